// The layout of BTF's type section (include/uapi/linux/btf.h), shared by the
// check of an object's raw BTF (check.ts) and the reader of its types
// through libbpf (types.ts); tests that patch BTF walk it with these too.
import {
  BTF_KIND_ARRAY,
  BTF_KIND_DATASEC,
  BTF_KIND_DECL_TAG,
  BTF_KIND_ENUM,
  BTF_KIND_ENUM64,
  BTF_KIND_FUNC_PROTO,
  BTF_KIND_INT,
  BTF_KIND_STRUCT,
  BTF_KIND_UNION,
  BTF_KIND_VAR,
} from '../sys/uapi.js';

/** Bytes of struct btf_type: name_off, info, size or type. */
export const TYPE_SIZE = 12;

/** BTF_INFO_KIND: the kind in btf_type.info. */
export const infoKind = (info: number): number => (info >>> 24) & 0x1f;

/** BTF_INFO_VLEN: how many records follow, in btf_type.info. */
export const infoVlen = (info: number): number => info & 0xffff;

/** 32-bit words of records after struct btf_type, by kind (every kind's). */
export function recordWords(kind: number, vlen: number): number {
  switch (kind) {
    case BTF_KIND_INT:
    case BTF_KIND_VAR:
    case BTF_KIND_DECL_TAG:
      return 1;
    case BTF_KIND_ARRAY:
      return 3;
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION:
    case BTF_KIND_DATASEC:
    case BTF_KIND_ENUM64:
      return 3 * vlen;
    case BTF_KIND_ENUM:
    case BTF_KIND_FUNC_PROTO:
      return 2 * vlen;
    default:
      return 0;
  }
}
