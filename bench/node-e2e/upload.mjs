// The Node reference for Kiln's large-upload benchmark (issue 14 target 4): Express 5 + multer 2 with disk storage,
// the idiomatic way to take a multipart upload in Node. One route, POST /upload with a `file` field; it answers
// once multer has written the file. Run by `Kiln.Bench upload-multer`, never by tests.
//   node upload.mjs PORT DIR      prints "NODE-UPLOAD-READY" once it listens
import express from "express";
import multer from "multer";
import { unlink } from "node:fs/promises";

const [port, dir] = [Number(process.argv[2]), process.argv[3]];
const upload = multer({ storage: multer.diskStorage({ destination: dir }), limits: { fileSize: 8 * 1024 ** 3 } });
const app = express();
app.post("/upload", upload.single("file"), (req, res) => res.status(201).json({ name: req.file.filename, size: req.file.size }));
// The benchmark deletes each upload after its round so the disk does not fill.
app.delete("/upload/:name", async (req, res) => { await unlink(`${dir}/${req.params.name}`); res.status(204).end(); });
app.listen(port, "127.0.0.1", () => console.log("NODE-UPLOAD-READY"));
