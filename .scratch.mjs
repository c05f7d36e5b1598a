import { resolveDatasetSpec } from './dist/src/data/datasetSpec.js';
import { readDataset } from './dist/src/data/manifest.js';
const D='/work/shared/data';
for (const input of [
 {manifest:`${D}/clothing/images.csv`, imageRoot:`${D}/clothing/images`, imageCol:'image', imageExt:'jpg', labelCol:'label', split:'train:0.9,test:0.1'},
 {manifest:`${D}/grocery/dataset/train.txt`, columns:'image,fine,coarse', imageCol:'image', join:`${D}/grocery/dataset/classes.csv`, joinOn:'fine=Class ID (int)', labelCol:'Class Name (str)', textFileCol:'Product Description Path (str)'},
 {manifest:`${D}/product-qa/hetPQA/answer_generation/train.csv`, textCol:'question,answer', labelCol:'source'},
 {manifest:`${D}/product-qa/semiPQA/data-to-text/train.csv`, textCol:'data,text'},
]) {
  const t=Date.now();
  const ds = await readDataset(resolveDatasetSpec(input));
  console.log(ds.totalRows, ds.rows.length, ds.bad.summary(), ds.rows[0], Date.now()-t);
}
