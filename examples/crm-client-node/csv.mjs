// Reading CSV as the controller writes it (RFC 4180: quoted fields may hold the separator,
// quotes doubled, \r\n or \n line ends) and as a CRM saves it (a comma, semicolon or tab
// separator: the import report's `delimiter` says which one the controller read).
export const SEPARATORS = Object.freeze({ comma: ',', semicolon: ';', tab: '\t' });

/** The rows of `text` as arrays of strings (a trailing line break ends the last row). */
export function parseCsv(text, separator = ',') {
  const rows = [];
  let row = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { cell += '"'; i += 1; }
      else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"' && cell === '') quoted = true;
    else if (ch === separator) { row.push(cell); cell = ''; }
    else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i += 1;
      row.push(cell); rows.push(row); row = []; cell = '';
    } else cell += ch;
  }
  if (quoted) throw new Error('CSV: a quoted field is not closed at the end of the text');
  if (cell !== '' || row.length) { row.push(cell); rows.push(row); }
  return rows;
}

/** The rows of `text` as objects keyed by the header line's names. */
export function csvRecords(text, separator = ',') {
  const [header, ...rows] = parseCsv(text.replace(/^\uFEFF/, ''), separator);
  if (!header) return [];
  const names = header.map((h) => h.trim());
  return rows.filter((r) => r.some((c) => c !== '')).map((r, i) => {
    if (r.length > names.length) throw new Error(`CSV line ${i + 2}: ${r.length} cells, the header names ${names.length}`);
    return Object.fromEntries(names.map((n, k) => [n, r[k] ?? '']));
  });
}

/** A cell as it was before the controller neutralised it: a text cell a spreadsheet would
 *  run as a formula (=, +, -, @, tab or CR first) is written with a leading '. */
export function unneutralised(cell) {
  return /^'[=+\-@\t\r]/.test(cell) ? cell.slice(1) : cell;
}
