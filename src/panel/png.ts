// PNG data URLs from the webview's canvas.toDataURL, checked before anything is written.
import { writeFile } from "node:fs/promises";

const PREFIX = "data:image/png;base64,";
const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function decodePngDataUrl(dataUrl: string): Buffer {
  if (!dataUrl.startsWith(PREFIX)) {
    throw new Error(`expected a data:image/png;base64 URL from the chart, got "${dataUrl.slice(0, 30)}…"`);
  }
  const bytes = Buffer.from(dataUrl.slice(PREFIX.length), "base64");
  if (bytes.length < 24 || !bytes.subarray(0, 8).equals(SIGNATURE)) {
    throw new Error("the chart image is not a PNG (bad signature); nothing was written");
  }
  return bytes;
}

/** Width and height from the IHDR chunk. */
export function pngSize(png: Buffer): { width: number; height: number } {
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

export async function writePngDataUrl(dataUrl: string, file: string): Promise<number> {
  const bytes = decodePngDataUrl(dataUrl);
  await writeFile(file, bytes);
  return bytes.length;
}
