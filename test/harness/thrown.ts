/** The error a function throws, or null: lets tests match the error's fields (sipStatus, msmlCode) with t.match. */
export function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return null;
}
