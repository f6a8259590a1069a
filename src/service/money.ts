// Exact money. An amount arrives as a JSON number's source text (see json-body.ts), a JSON string
// or a form field, is checked as text and goes to PostgreSQL as text into numeric(17, 2); it comes
// back as the text PostgreSQL prints. No step turns it into a binary float.
import { JsonNumber } from './json-body.js';

export const MAX_AMOUNT = '999999999999999.99';
const MAX_INTEGER_DIGITS = 15;
const MAX_DECIMALS = 2;

export type FieldError = { type: string; loc: string[]; msg: string; input: unknown };

const PLAIN_DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/;

/** The amount as canonical decimal text ("10.5", "0.07"), or the reason it is not acceptable. */
export function parseAmount(
  raw: unknown,
  loc: string[],
): { amount: string } | { error: FieldError } {
  const fail = (type: string, msg: string) => ({ error: { type, loc, msg, input: raw } });
  let text: string;
  if (raw instanceof JsonNumber) text = raw.text;
  else if (typeof raw === 'string') text = raw;
  else if (raw === undefined) return fail('missing', 'Field required');
  else return fail('decimal_type', 'Input should be a decimal number or a string holding one');

  const match = PLAIN_DECIMAL.exec(text);
  if (match === null) {
    return fail(
      'decimal_parsing',
      'Input should be a plain decimal number such as 12.50 (no exponent, sign or spaces)',
    );
  }
  const [, sign, integerDigits = '', decimals = ''] = match;
  const integer = integerDigits.replace(/^0+(?=\d)/, '');
  if (sign === '-' || (/^0+$/.test(integer) && /^0*$/.test(decimals))) {
    return fail('greater_than', 'Input should be greater than 0');
  }
  if (decimals.length > MAX_DECIMALS) {
    return fail(
      'decimal_max_places',
      `Decimal input should have no more than ${MAX_DECIMALS} decimal places`,
    );
  }
  if (integer.length > MAX_INTEGER_DIGITS) {
    return fail('less_than_equal', `Input should be less than or equal to ${MAX_AMOUNT}`);
  }
  return { amount: decimals === '' ? integer : `${integer}.${decimals}` };
}

// Ids travel in URLs (/orders/:id): letters, digits, - and _ only, so no escaping is ever needed.
export const ORDER_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function parseOrderId(
  raw: unknown,
  loc: string[],
): { id: string | undefined } | { error: FieldError } {
  if (raw === undefined || raw === null) return { id: undefined };
  if (typeof raw !== 'string')
    return {
      error: { type: 'string_type', loc, msg: 'Input should be a valid string', input: raw },
    };
  if (!ORDER_ID.test(raw)) {
    return {
      error: {
        type: 'string_pattern_mismatch',
        loc,
        msg: 'Input should be 1 to 64 letters, digits, - or _',
        input: raw,
      },
    };
  }
  return { id: raw };
}
