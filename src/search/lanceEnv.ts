// Settings LanceDB's native module reads from the environment when it loads; imported by
// lanceStore.ts before '@lancedb/lancedb' so they are in place by then. A user's own value wins.
//   LANCEDB_LOG: its Rust logger's level. Its warnings at the default level are about its own
//     future defaults ("No existing dataset … it will be created"), noise in every command's output.
//   LANCE_INCLUDE_VECTOR_CENTROIDS: index statistics without the IVF centroids (info() never shows
//     them; this also silences the warning that the default will change).
process.env.LANCEDB_LOG ??= 'error';
process.env.LANCE_INCLUDE_VECTOR_CENTROIDS ??= 'false';
