export { loadSafetensors, saveSafetensors, readSafetensorsHeader, SafetensorsError, type SafetensorsEntry, type SafetensorsHeader } from './safetensors.js';
