/** Exit codes, documented in the README. */
export const EXIT_OK = 0;
/** Reserved for "completed, but a quality gate failed" (`--max-drop`, with evaluation data). */
export const EXIT_GATE = 1;
/** Bad input or usage: the message names the file and the problem; nothing was written. */
export const EXIT_BAD_INPUT = 2;
/** A bug in kprune. */
export const EXIT_INTERNAL = 3;
