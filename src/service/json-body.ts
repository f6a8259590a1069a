// JSON request bodies, parsed without losing any digit of a number.
//
// JSON.parse turns every number into a binary float, so {"amount": 0.1} or a 17-digit amount is
// already rounded before any code sees it, and Node 20's JSON.parse reviver does not get the
// number's source text (that arrived in Node 21). This parser keeps each number as its exact
// source text (JsonNumber); everything else is what JSON.parse gives. The surrounding behaviour is
// body-parser's json(): the same size limit, content encodings, UTF-8 only, objects and arrays
// only at the top level (strict), and the same errors (400 malformed, 413, 415).
import express, { type RequestHandler } from 'express';
import { parse } from 'lossless-json';

/** A JSON number exactly as it was written in the request, e.g. "0.10" or "1e400". */
export class JsonNumber {
  constructor(readonly text: string) {}
  toJSON(): string {
    return this.text;
  }
}

function clientError(status: number, type: string, message: string): Error {
  return Object.assign(new Error(message), { status, statusCode: status, type, expose: true });
}

const CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)/i;

export function jsonBody(limit: string): RequestHandler {
  const readText = express.text({ type: 'application/json', limit });
  return (req, res, next) => {
    // body-parser's json() accepts the UTF encodings only; text() would decode any charset.
    const charset = CHARSET.exec(req.headers['content-type'] ?? '')?.[1]?.toLowerCase();
    if (charset !== undefined && !charset.startsWith('utf-') && req.is('application/json')) {
      next(
        clientError(415, 'charset.unsupported', `unsupported charset "${charset.toUpperCase()}"`),
      );
      return;
    }
    readText(req, res, (err?: unknown) => {
      if (err !== undefined) return next(err);
      const text: unknown = req.body;
      if (typeof text !== 'string') return next();
      if (text.trim() === '') {
        req.body = {};
        return next();
      }
      // strict: like body-parser, only an object or an array at the top level.
      const first = /^[\s]*(.)/.exec(text)?.[1];
      if (first !== '{' && first !== '[')
        return next(clientError(400, 'entity.parse.failed', 'malformed JSON body'));
      try {
        req.body = parse(text, null, (numberText) => new JsonNumber(numberText));
      } catch {
        // A syntax error, a duplicate key, or nesting deep enough to exhaust the stack: all 400.
        return next(clientError(400, 'entity.parse.failed', 'malformed JSON body'));
      }
      next();
    });
  };
}
