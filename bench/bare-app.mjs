// The baseline for bench:http: bare Express answering the same JSON as the service, nothing else.
import express from 'express';

const app = express();
app.get('/health', (_req, res) => {
  res.json({ status: 'ok', version: 'bench', commit: 'bench', uptime_seconds: 0 });
});
app.get('/items/:item_id', (req, res) => {
  res.json({ item_id: Number(req.params.item_id), q: req.query.q ?? null });
});
const server = app.listen(Number(process.env.PORT), '127.0.0.1', () => console.log('listening'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
