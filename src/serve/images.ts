// Sending a catalog image from the server's disk: thumbnails of index rows and the images of
// held-out examples. A client only ever names an id; the path comes from the index or the run's
// data, and is still refused unless it resolves (symlinks followed) inside the image root, so an
// index row that names /etc/passwd serves nothing. Images are immutable catalog assets: cached
// for an hour, revalidated by ETag. An image inside a tar shard (data/shardMember.ts) is served
// as the byte range of its member, under the same check of the shard's path.
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { extname, isAbsolute, relative, resolve, sep } from 'node:path';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpProblem } from './problem.js';
import { parseShardMemberRef, type ShardMember } from '../data/shardMember.js';

const TYPES: Readonly<Record<string, string>> = Object.freeze({
  '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.webp': 'image/webp', '.gif': 'image/gif',
  '.avif': 'image/avif', '.tif': 'image/tiff', '.tiff': 'image/tiff', '.heic': 'image/heic', '.bmp': 'image/bmp',
});

/** Whether `path` names an image file under `root`, by the names alone (serving checks the real paths too). */
export function imageUnder(path: string, root: string | undefined): boolean {
  const { file, name } = fileOf(path);
  if (root === undefined || file === '' || TYPES[extname(name).toLowerCase()] === undefined) return false;
  return inside(resolve(root), resolve(file));
}

/** The file an image's bytes are in (a shard member's shard), and the name its type is read from. */
function fileOf(path: string): { file: string; name: string; member?: ShardMember } {
  const member = parseShardMemberRef(path);
  return member === undefined ? { file: path, name: path } : { file: member.shard, name: member.name, member };
}

function inside(dir: string, file: string): boolean {
  const rel = relative(dir, file);
  return !(rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel));
}

/** The file's real path when it is an image file inside `root`, else undefined. */
export async function servableImage(path: string, root: string | undefined): Promise<string | undefined> {
  if (!imageUnder(path, root)) return undefined;
  try {
    const [file, dir] = await Promise.all([realpath(fileOf(path).file), realpath(root!)]);
    if (!inside(dir, file)) return undefined;
    return (await stat(file)).isFile() ? file : undefined;
  } catch {
    return undefined;   // missing, unreadable: not servable
  }
}

/** Sends the image at `path` (checked against `root`), or a 404 naming `what`. */
export async function sendImage(request: FastifyRequest, reply: FastifyReply, path: string | undefined, root: string | undefined, what: string): Promise<FastifyReply> {
  const file = path !== undefined ? await servableImage(path, root) : undefined;
  if (file === undefined) throw new HttpProblem(404, 'not_found', `${what}: no image to serve`);
  const { name, member } = fileOf(path!);
  const s = await stat(file);
  if (member !== undefined && member.offset + member.size > s.size) throw new HttpProblem(404, 'not_found', `${what}: no image to serve`);
  const etag = `"${s.size.toString(16)}-${Math.floor(s.mtimeMs).toString(16)}${member !== undefined ? `-${member.offset.toString(16)}` : ''}"`;
  reply.header('cache-control', 'public, max-age=3600').header('etag', etag).header('last-modified', s.mtime.toUTCString());
  if (request.headers['if-none-match'] === etag) return reply.code(304).send();
  const body = member !== undefined ? createReadStream(file, { start: member.offset, end: member.offset + member.size - 1 }) : createReadStream(file);
  return reply.type(TYPES[extname(name).toLowerCase()]!).header('content-length', member?.size ?? s.size).send(body);
}
