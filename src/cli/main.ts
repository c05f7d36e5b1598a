// `m6 <verb>`: one commander program; each verb group lives in its own file under commands/ and
// registers itself here. Errors meant for the user (UsageError) print one clear line, not a stack.
import { Command, CommanderError } from 'commander';
import { registerInfo } from './commands/info.js';
import { registerData } from './commands/data.js';
import { registerTokenizer } from './commands/tokenizer.js';
import { registerInspect } from './commands/inspect.js';
import { registerPlan } from './commands/plan.js';
import { registerTrain } from './commands/train.js';
import { registerTasks } from './commands/tasks.js';
import { registerDesign } from './commands/design.js';
import { registerEmbed } from './commands/embed.js';
import { registerDemo } from './commands/demo.js';
import { registerEval } from './commands/eval.js';
import { registerIndex, registerSearch } from './commands/search.js';
import { registerRecommend } from './commands/recommend.js';
import { registerServe } from './commands/serve.js';
import { UsageError } from './errors.js';

// Each entry adds one verb group. Keep one line per group.
const groups: Array<(program: Command) => void> = [
  registerInfo,
  registerData,
  registerTokenizer,
  registerInspect,
  registerPlan,
  registerTrain,
  registerTasks,
  registerDesign,
  registerEmbed,
  registerDemo,
  registerEval,
  registerIndex,
  registerSearch,
  registerRecommend,
  registerServe,
];

export function buildProgram(): Command {
  const program = new Command('m6')
    .description('M6: one multimodal model for product descriptions, designs, answers and search')
    .showHelpAfterError()
    .exitOverride();
  for (const register of groups) register(program);
  return program;
}

export async function run(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (err instanceof UsageError) {
      console.error(`m6: ${err.message}`);
      return err.exitCode;
    }
    throw err;
  }
}
