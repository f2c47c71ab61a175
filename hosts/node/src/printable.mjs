// Text from the plugin or upstream is stored and passed on exactly, but shown neutralised: a
// control character (a newline, an ANSI escape that could repaint a terminal or forge a log
// line) is written as a visible `\u{…}` escape in messages and log lines.

// C0 and C1 controls, DEL, and the bidirectional overrides that reorder what a reader sees.
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

export function printable(text) {
  return String(text).replace(CONTROL, (c) => `\\u{${c.codePointAt(0).toString(16)}}`);
}
