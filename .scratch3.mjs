import { probeImage, loadImage } from './dist/src/data/image.js';
import { readFileSync, writeFileSync } from 'node:fs';
import sharp from 'sharp';
const src='/work/shared/data/clothing/images/00003aeb-ace5-43bf-9a0c-dc31a03e9cd2.jpg';
const b=readFileSync(src);
writeFileSync('/tmp/scratch/trunc.jpg', b.subarray(0, b.length>>1));
writeFileSync('/tmp/scratch/text.jpg', 'hello world\n');
writeFileSync('/tmp/scratch/empty.jpg', '');
const noisy = Buffer.alloc(300*200*3); for (let i=0;i<noisy.length;i++) noisy[i]=(i*7919)%251;
await sharp(noisy,{raw:{width:300,height:200,channels:3}}).jpeg().toFile('/tmp/scratch/noisy.jpg');
const nb=readFileSync('/tmp/scratch/noisy.jpg'); writeFileSync('/tmp/scratch/trunc2.jpg', nb.subarray(0, nb.length-1000));
for (const f of [src,'/tmp/scratch/trunc.jpg','/tmp/scratch/trunc2.jpg','/tmp/scratch/text.jpg','/tmp/scratch/empty.jpg','/tmp/scratch/nope.jpg','/tmp/scratch/big.jpg', '/tmp']) {
  try { console.log(await probeImage(f)); } catch (e) { console.log(e.reason, e.message); }
}
const t=Date.now(); const im = await loadImage(src,{size:224, augment:{seed:1}}); console.log(Date.now()-t, im.shape, im.data[0], im.data[50000]);
