import sharp from 'sharp';
import { writeFileSync } from 'node:fs';
const t0=Date.now();
// 90 MP: 11000 x 8182
const w=11000,h=8182;
await sharp({create:{width:w,height:h,channels:3,background:{r:200,g:30,b:40}}}).jpeg({quality:70}).toFile('/tmp/scratch/big.jpg');
console.log('made', Date.now()-t0);
for (const f of ['a','b','c']) {
 const t=Date.now();
 let p;
 if (f==='a') p=sharp('/tmp/scratch/big.jpg',{limitInputPixels:150e6}).rotate().resize(224,224,{fit:'contain'}).raw().toBuffer();
 if (f==='b') p=sharp('/tmp/scratch/big.jpg',{limitInputPixels:150e6}).rotate().extract({left:100,top:100,width:5000,height:5000}).resize(224,224).raw().toBuffer();
 if (f==='c') p=sharp('/tmp/scratch/big.jpg',{limitInputPixels:50e6}).resize(224).raw().toBuffer().catch(e=>e.message);
 const r=await p; console.log(f, Date.now()-t, typeof r==='string'?r:r.length, process.memoryUsage().rss>>20);
}
// grey, cmyk, alpha
const g = await sharp({create:{width:10,height:10,channels:3,background:'#808080'}}).greyscale().png().toBuffer();
const c = await sharp({create:{width:10,height:10,channels:3,background:'#ff0000'}}).toColourspace('cmyk').jpeg().toBuffer();
const a = await sharp({create:{width:10,height:10,channels:4,background:{r:0,g:0,b:255,alpha:0.5}}}).png().toBuffer();
for (const [n,b] of [['g',g],['c',c],['a',a]]) {
  const m = await sharp(b).metadata();
  const r = await sharp(b).rotate().flatten({background:'#ffffff'}).toColourspace('srgb').resize(4,4).raw().toBuffer({resolveWithObject:true});
  console.log(n, m.channels, m.space, r.info.channels, [...r.data.subarray(0,6)]);
}
