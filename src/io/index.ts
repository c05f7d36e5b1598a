export { loadSafetensors, saveSafetensors, readSafetensorsHeader, SafetensorsError, type SafetensorsEntry, type SafetensorsHeader } from './safetensors.js';
export { writeFileAtomic, renameDurably, fsyncFolder, tempNameFor } from './atomicFile.js';
