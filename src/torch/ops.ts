// Operators by name. Each is looked up once in libtorch's dispatcher; its schema (argument names,
// types, defaults) comes back with it, so the generic `callOp` can take keyword arguments.
import { native, type NativeArg, type OpId, type OpInfo } from './native.js';

const infos = new Map<string, OpInfo>();

/** The operator `name.overload` (e.g. `aten::add`, `Tensor`), looked up once. Throws when this libtorch lacks it. */
export function opInfo(name: string, overload = ''): OpInfo {
  const key = `${name}.${overload}`;
  let info = infos.get(key);
  if (!info) {
    info = native.opHandle(name, overload);
    infos.set(key, info);
  }
  return info;
}

export function op(name: string, overload = ''): OpId {
  return opInfo(name, overload).id;
}

/** Whether this libtorch has the operator (e.g. `aten::scaled_dot_product_attention` is new in 2.0). */
export function hasOp(name: string, overload = ''): boolean {
  return native.hasOp(name, overload);
}

/** Orders positional and keyword arguments by the operator's schema. */
export function orderArgs(info: OpInfo, args: readonly NativeArg[], kwargs: Record<string, NativeArg> = {}): NativeArg[] {
  const out: NativeArg[] = [...args];
  for (const [k, v] of Object.entries(kwargs)) {
    const i = info.args.findIndex((a) => a.name === k);
    if (i < 0) {
      throw new TypeError(`${info.name} has no argument '${k}'; its arguments are: ${info.args.map((a) => `${a.name}: ${a.type}`).join(', ')}`);
    }
    if (i < args.length && args[i] !== undefined) throw new TypeError(`${info.name}: argument '${k}' given twice`);
    while (out.length < i) out.push(undefined);
    out[i] = v;
  }
  return out;
}
