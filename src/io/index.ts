export { loadSafetensors, saveSafetensors, readSafetensorsHeader, SafetensorsError, type SafetensorsEntry, type SafetensorsHeader, type WrittenFile } from './safetensors.js';
export { writeFileAtomic, renameDurably, fsyncFolder, tempNameFor } from './atomicFile.js';
