/**
 * The fine-tuning card of the HTML report (`--finetune`): what trained the filters (engine, device
 * and threads), how much (steps, batch, images/s, time), and the held-out figures that chose the
 * checkpoint: the chosen step, whether the reconstructed start was kept, and the noise of that
 * choice. The same facts as the text report's fine-tuning lines and the JSON's `finetune`.
 */
import type { FinetuneFigures } from './report.js';
import { esc } from './html-escape.js';

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const loss = (x: number) => x.toFixed(4);

function rows(entries: [string, string][]): string {
  return `<dl class="method">${entries.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl>`;
}

/** Which checkpoint was written, in words. */
export function chosenText(f: FinetuneFigures): string {
  const h = f.heldOut;
  if (f.bestStep > 0) {
    const imp = h.improvement ? `: held-out loss ${loss(h.improvement.loss)} ± ${loss(h.improvement.stdError)} (paired standard error) below the start` : '';
    return `step ${f.bestStep} of ${f.steps}${imp}`;
  }
  if (h.notSignificant) {
    return `the reconstructed start, kept: the best trained checkpoint (step ${h.notSignificant.step}) lowered the held-out loss by `
      + `${loss(h.notSignificant.improvement.loss)} ± ${loss(h.notSignificant.improvement.stdError)}, under two standard errors`;
  }
  return 'the reconstructed start, kept: no trained checkpoint did better on the held-out samples';
}

export function finetuneCardHtml(f: FinetuneFigures): string {
  const h = f.heldOut;
  const engine = f.engine === 'onnxruntime' ? 'onnxruntime (a training graph kprune builds)' : 'TF.js';
  const why = [f.engineNote, ...(f.missingOperators.length > 0 ? [`no onnxruntime backward rule for ${f.missingOperators.join('; ')}`] : [])].filter((x): x is string => !!x);
  const metric = h.metric === 'top1' ? 'top-1' : h.metric === 'agreement' ? 'agreement' : 'MSE';
  const score = (x: typeof h.before) => (h.metric === 'top1' ? (x.top1 === undefined ? '–' : pct(x.top1)) : h.metric === 'agreement' ? (x.agreement === undefined ? '–' : pct(x.agreement)) : (x.mse === undefined ? '–' : x.mse.toPrecision(4)));
  const table = '<div class="table-wrap"><table><thead><tr><th></th><th class="num">held-out loss</th>'
    + `<th class="num">held-out ${esc(metric)}</th></tr></thead><tbody>`
    + `<tr><td>start (reconstructed)</td><td class="num">${esc(loss(h.before.loss))}</td><td class="num">${esc(score(h.before))}</td></tr>`
    + `<tr><td>written (step ${esc(f.bestStep)})</td><td class="num">${esc(loss(h.after.loss))}</td><td class="num">${esc(score(h.after))}</td></tr>`
    + '</tbody></table></div>';
  return '<article class="card finetune"><div class="card-head"><h3>Fine-tuning</h3>'
    + `<p class="ratio"><span class="r">${f.bestStep > 0 ? `step ${esc(f.bestStep)}` : 'start kept'}</span><span class="rl">written</span></p></div>`
    + rows([
      ['Engine', engine],
      ['Device, threads', f.backend],
      ['Steps', `${f.steps} of ${f.batch} samples (${f.objective})`],
      ['Speed', `${Math.round(f.imagesPerSecond)} images/s; training ${(f.trainMs / 1000).toFixed(1)} s, held-out scoring ${(f.evalMs / 1000).toFixed(1)} s`],
      ['Chosen by', `held-out ${h.selectedBy === 'loss' ? 'loss' : metric} on ${h.samples} samples from the calibration pool (never the evaluation set)`],
      ['Written', chosenText(f)],
      ...why.map((w) => ['Trained in TF.js', w] as [string, string]),
    ])
    + table
    + '</article>';
}
