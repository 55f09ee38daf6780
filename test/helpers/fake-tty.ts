/**
 * Preloaded (`node --import`) into CLI runs that must see kprune's progress line: it is drawn only
 * on a terminal, so stderr claims to be one. Does nothing unless KPRUNE_TEST_FAKE_TTY=1 (the test
 * runner also loads this file as a test file of its own).
 */
if (process.env.KPRUNE_TEST_FAKE_TTY === '1') {
  Object.defineProperty(process.stderr, 'isTTY', { value: true });
  Object.defineProperty(process.stderr, 'columns', { value: 200 });
}
export {};
