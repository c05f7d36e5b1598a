// An image inside a tar shard, named by a string that travels wherever an image path does (task
// examples, worker jobs, the decoded-image cache, the VQ stage's image bank, evaluation): the shard,
// the member's name, and where its bytes lie in the (uncompressed) tar. Reading it is one positioned
// read of those bytes, so a shard is never unpacked and an epoch never holds more than a batch's images.
// This is WebDataset's `wids` idea (random access into tar shards by a member index) over the
// sequential read that found the offsets.
import { open, stat } from 'node:fs/promises';

export interface ShardMember {
  shard: string;
  /** The member's name in the tar (`p000042.png`). */
  name: string;
  /** Byte offset of the member's data in the shard file. */
  offset: number;
  size: number;
}

// `<shard>.tar#<member>@<offset>+<size>`: no image file a manifest names ends so.
const MEMBER_REF = /^(.+\.tar)#(.+)@(\d+)\+(\d+)$/;

export function shardMemberRef(m: ShardMember): string {
  return `${m.shard}#${m.name}@${m.offset}+${m.size}`;
}

/** The member a reference names, or undefined for a plain file path. */
export function parseShardMemberRef(ref: string): ShardMember | undefined {
  const m = MEMBER_REF.exec(ref);
  if (m === null) return undefined;
  return { shard: m[1]!, name: m[2]!, offset: Number(m[3]), size: Number(m[4]) };
}

/** The shard's size and modification time (a cache key: a rewritten shard is read again), checked to hold the member. */
export async function statShardMember(m: ShardMember): Promise<{ size: number; mtimeMs: number }> {
  const s = await stat(m.shard);
  if (!s.isFile()) throw Object.assign(new Error(`${m.shard} is not a regular file`), { code: 'EISDIR' });
  if (m.offset + m.size > s.size) throw new Error(`truncated: member ${m.name} needs bytes ${m.offset}…${m.offset + m.size} of ${m.shard}, which has ${s.size}`);
  return { size: s.size, mtimeMs: s.mtimeMs };
}

/** The member's bytes, read in place. */
export async function readShardMember(m: ShardMember): Promise<Buffer> {
  const fh = await open(m.shard, 'r');
  try {
    const buf = Buffer.alloc(m.size);
    const { bytesRead } = await fh.read(buf, 0, m.size, m.offset);
    if (bytesRead !== m.size) throw new Error(`truncated: read ${bytesRead} of member ${m.name}'s ${m.size} bytes from ${m.shard}`);
    return buf;
  } finally {
    await fh.close();
  }
}
