// Garment pictures as SVG, rasterised by sharp (librsvg). Shapes live in a 100×100 box; the
// pattern is an SVG <pattern> in the garment's two colours, so stripes, dots and checks follow the
// silhouette exactly. Integer-rounded placement keeps the SVG text, and so the PNG, reproducible.
import sharp from 'sharp';
import { colourInfo, type GarmentAttributes, type Placement, type Sleeve } from './attributes.js';

const OUTLINE = 'stroke="#00000055" stroke-width="1" stroke-linejoin="round"';

function topPath(sleeve: Sleeve): string {
  const neck = 'M38,18 L45,16 Q50,22 55,16 L62,18';
  if (sleeve === 'long') return `${neck} L74,26 L84,70 L76,72 L66,38 L66,84 L34,84 L34,38 L24,72 L16,70 L26,26 Z`;
  if (sleeve === 'short') return `${neck} L80,32 L73,41 L66,36 L66,84 L34,84 L34,36 L27,41 L20,32 Z`;
  return `${neck} L66,22 L66,84 L34,84 L34,22 Z`;
}

function dressPath(sleeve: Sleeve): string {
  const neck = 'M40,14 L46,14 Q50,20 54,14 L60,14';
  const skirt = 'L62,42 L78,88 L22,88 L38,42';
  if (sleeve === 'long') return `${neck} L70,22 L80,62 L73,64 L63,32 ${skirt} L37,32 L27,64 L20,62 L30,22 Z`;
  if (sleeve === 'short') return `${neck} L72,24 L67,33 L62,30 ${skirt} L38,30 L33,33 L28,24 Z`;
  return `${neck} L62,16 ${skirt} L38,16 Z`;
}

/** The filled silhouette plus details drawn on top (collar, buttons, soles, laces). */
function shape(attrs: GarmentAttributes): { body: string; details: string } {
  const sleeve = attrs.sleeve ?? 'sleeveless';
  switch (attrs.category) {
    case 't-shirt':
      return { body: `<path d="${topPath(sleeve)}"/>`, details: '' };
    case 'shirt':
      return {
        body: `<path d="${topPath(sleeve)}"/>`,
        details:
          '<path d="M45,16 L50,26 L44,28 L40,18 Z M55,16 L50,26 L56,28 L60,18 Z" fill="#ffffff" stroke="#00000055" stroke-width="0.8"/>' +
          [36, 48, 60, 72].map((y) => `<circle cx="50" cy="${y}" r="1.4" fill="#ffffff" stroke="#00000066" stroke-width="0.5"/>`).join(''),
      };
    case 'dress':
      return { body: `<path d="${dressPath(sleeve)}"/>`, details: '' };
    case 'skirt':
      return { body: '<path d="M34,28 L66,28 L80,80 L20,80 Z"/>', details: '<rect x="34" y="26" width="32" height="5" fill="#00000033"/>' };
    case 'trousers':
      return { body: '<path d="M33,12 L67,12 L71,90 L55,90 L50,34 L45,90 L29,90 Z"/>', details: '<rect x="33" y="12" width="34" height="4" fill="#00000033"/>' };
    case 'shorts':
      return { body: '<path d="M29,30 L71,30 L75,64 L54,64 L50,46 L46,64 L25,64 Z"/>', details: '<rect x="29" y="30" width="42" height="4" fill="#00000033"/>' };
    case 'sneaker':
      return {
        body: '<path d="M14,64 L14,46 Q26,45 36,38 L50,36 Q60,44 76,49 Q89,52 89,62 L89,64 Z"/>',
        details:
          '<rect x="12" y="64" width="79" height="7" rx="3" fill="#f5f5f5" stroke="#00000055" stroke-width="0.8"/>' +
          '<path d="M40,41 L46,47 M45,39 L51,45 M50,38 L56,44" stroke="#ffffff" stroke-width="1.6"/>',
      };
    case 'boot':
      return {
        body: '<path d="M30,12 L54,12 L54,54 Q72,56 82,66 L82,76 L30,76 Z"/>',
        details: '<rect x="28" y="76" width="56" height="7" rx="2" fill="#3e2723"/>',
      };
    case 'handbag':
      return {
        body: '<path d="M20,42 L80,42 L86,84 L14,84 Z"/>',
        details: '<path d="M34,42 Q34,16 50,16 Q66,16 66,42" fill="none" stroke="#00000088" stroke-width="3"/><rect x="46" y="48" width="8" height="5" fill="#c9a227"/>',
      };
    case 'hat':
      return {
        body: '<path d="M12,64 Q12,56 30,56 Q30,26 50,26 Q70,26 70,56 Q88,56 88,64 Q88,72 50,72 Q12,72 12,64 Z"/>',
        details: '<path d="M30,52 L70,52 L70,56 L30,56 Z" fill="#00000044"/>',
      };
  }
}

function patternDef(attrs: GarmentAttributes): string {
  const a = colourInfo(attrs.colour).hex;
  const b = attrs.secondaryColour !== null ? colourInfo(attrs.secondaryColour).hex : a;
  const tile = (size: number, inner: string): string =>
    `<pattern id="fabric" width="${size}" height="${size}" patternUnits="userSpaceOnUse"><rect width="${size}" height="${size}" fill="${a}"/>${inner}</pattern>`;
  switch (attrs.pattern) {
    case 'solid':
      return tile(10, '');
    // The main colour must cover most of the fabric, or "the main colour" is a coin toss: a 50/50
    // checkerboard has no main colour at all. Stripes and checks are thin lines of the second colour.
    case 'striped':
      return tile(10, `<rect y="0" width="10" height="3" fill="${b}"/>`);
    case 'polka-dot':
      return tile(12, `<circle cx="3" cy="3" r="2.2" fill="${b}"/><circle cx="9" cy="9" r="2.2" fill="${b}"/>`);
    case 'checked':
      return tile(12, `<rect width="12" height="2.5" fill="${b}"/><rect width="2.5" height="12" fill="${b}"/>`);
  }
}

export function garmentSvg(attrs: GarmentAttributes, place: Placement, size: number): string {
  const [r, g, b] = place.background;
  const { body, details } = shape(attrs);
  const transform = `translate(${50 + place.dx} ${50 + place.dy}) rotate(${place.rotate}) scale(${place.scale}) translate(-50 -50)`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 100 100">`,
    `<defs>${patternDef(attrs)}</defs>`,
    `<rect width="100" height="100" fill="rgb(${r},${g},${b})"/>`,
    `<ellipse cx="${50 + place.dx}" cy="${92 + Math.min(place.dy, 4)}" rx="${Math.round(30 * place.scale)}" ry="3" fill="#00000018"/>`,
    `<g transform="${transform}">`,
    `<g fill="url(#fabric)" ${OUTLINE}>${body}</g>`,
    details,
    '</g>',
    '</svg>',
  ].join('');
}

/** Rasterise to PNG bytes (PNG, not JPEG: exact colours make the catalog an exact oracle). */
export async function renderGarmentPng(attrs: GarmentAttributes, place: Placement, size: number): Promise<Buffer> {
  return sharp(Buffer.from(garmentSvg(attrs, place, size)), { density: 72 }).resize(size, size).png({ compressionLevel: 9 }).toBuffer();
}
