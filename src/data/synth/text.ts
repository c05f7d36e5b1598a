// Titles (English and Chinese), descriptions in varied wording, and Q&A pairs about what the
// picture shows. Only visible attributes are stated, so every sentence can be checked against the
// image's known truth.
import type { Rng } from '../random.js';
import { categoryInfo, colourInfo, PATTERNS, SLEEVES, COLOURS, type GarmentAttributes } from './attributes.js';

export interface QaPair {
  question: string;
  answer: string;
}

function capitalise(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function article(word: string): string {
  return /^[aeiou]/i.test(word) ? 'an' : 'a';
}

function patternWord(attrs: GarmentAttributes): string {
  return { solid: 'solid', striped: 'stripes', 'polka-dot': 'polka dots', checked: 'checks' }[attrs.pattern];
}

export function titleEn(attrs: GarmentAttributes): string {
  const parts = [capitalise(attrs.colour)];
  if (attrs.pattern !== 'solid') parts.push(PATTERNS.find((p) => p.name === attrs.pattern)!.en);
  if (attrs.sleeve !== null) parts.push(SLEEVES.find((s) => s.name === attrs.sleeve)!.en);
  parts.push(categoryInfo(attrs.category).en);
  return parts.join(' ');
}

export function titleZh(attrs: GarmentAttributes): string {
  let s = colourInfo(attrs.colour).zh;
  if (attrs.secondaryColour !== null) s += `配${colourInfo(attrs.secondaryColour).zh}`;
  if (attrs.pattern !== 'solid') s += PATTERNS.find((p) => p.name === attrs.pattern)!.zh;
  if (attrs.sleeve !== null) s += SLEEVES.find((x) => x.name === attrs.sleeve)!.zh;
  return s + categoryInfo(attrs.category).zh;
}

const CLOSERS: Record<string, readonly string[]> = {
  top: ['Easy to pair with jeans or a skirt.', 'A dependable piece for everyday wear.', 'Layer it or wear it on its own.'],
  dress: ['Ready for a day out or a summer evening.', 'An easy one-piece outfit.', 'Dress it up or keep it casual.'],
  bottom: ['Pairs well with a plain top.', 'Made for everyday comfort.', 'A versatile wardrobe staple.'],
  shoes: ['Built for all-day walking.', 'A comfortable everyday pair.', 'Finishes a casual outfit.'],
  accessory: ['A finishing touch for any outfit.', 'Practical and easy to style.', 'Goes with almost everything.'],
};

export function describe(attrs: GarmentAttributes, rng: Rng): string {
  const info = categoryInfo(attrs.category);
  const colour = attrs.colour;
  const second = attrs.secondaryColour;
  const noun = info.noun;
  let look: string;
  if (attrs.pattern === 'solid') {
    look = rng.pick([`in solid ${colour}`, `in a plain ${colour} finish`, `in one solid ${colour} colour`]);
  } else if (attrs.pattern === 'checked') {
    look = rng.pick([`in a ${colour} and ${second} check`, `with a ${colour} and ${second} checked pattern`]);
  } else {
    look = rng.pick([`in ${colour} with ${second} ${patternWord(attrs)}`, `with ${second} ${patternWord(attrs)} on ${colour}`]);
  }
  const first = rng.pick([
    `${capitalise(colour)} ${noun}${second === null ? '' : ` with ${second} ${patternWord(attrs)}`}.`,
    `This ${noun} comes ${look}.`,
    `${capitalise(article(noun))} ${noun} ${look}.`,
  ]);
  const sentences = [first];
  if (attrs.sleeve !== null && rng.bool(0.85)) {
    sentences.push(
      attrs.sleeve === 'sleeveless'
        ? rng.pick(['It is sleeveless.', 'The cut is sleeveless.', 'No sleeves, for warm days.'])
        : rng.pick([`It has ${attrs.sleeve} sleeves.`, `The sleeves are ${attrs.sleeve}.`, `Cut with ${attrs.sleeve} sleeves.`]),
    );
  }
  if (sentences.length < 3 && rng.bool(0.5)) sentences.push(rng.pick(CLOSERS[info.group]!));
  return sentences.join(' ');
}

export function questionsAndAnswers(attrs: GarmentAttributes, rng: Rng): QaPair[] {
  const info = categoryInfo(attrs.category);
  const qa: QaPair[] = [
    { question: rng.pick([`What colour is this ${info.noun}?`, 'What is the main colour?']), answer: attrs.colour },
    { question: rng.pick(['What kind of product is this?', 'What is shown in the picture?']), answer: attrs.category },
    { question: rng.pick(['What pattern does it have?', 'Is it plain or patterned?']), answer: attrs.pattern },
  ];
  if (attrs.secondaryColour !== null) {
    qa.push({ question: `What colour are the ${patternWord(attrs)}?`, answer: attrs.secondaryColour });
  }
  if (attrs.sleeve !== null) qa.push({ question: 'How long are the sleeves?', answer: attrs.sleeve });
  // A yes/no question, true half of the time, so "yes" is not always the answer.
  const asked = rng.bool(0.5) ? attrs.colour : rng.pick(COLOURS.filter((c) => c.name !== attrs.colour)).name;
  qa.push({ question: `Is this ${info.noun} ${asked}?`, answer: asked === attrs.colour ? 'yes' : 'no' });
  qa.push({ question: '这件商品是什么颜色？', answer: colourInfo(attrs.colour).zh });
  return qa;
}
