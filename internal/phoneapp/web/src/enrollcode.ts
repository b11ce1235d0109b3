// The enrollment code the committee hands a canvasser (internal/enrollcode):
// doorstep:enroll?server=HOST:PORT&election=ID&token=TOKEN&fp=FINGERPRINT[&tls=PIN]

export interface EnrollCode {
  server: string;
  election: string;
  token: string;
  fingerprint: string;
  tls: string;
}

export const PREFIX = "doorstep:enroll?";

export class CodeError extends Error {}

const B32 = /^[A-Z2-7]+$/;

export function parseCode(text: string): EnrollCode {
  const s = text.trim();
  if (s.length > 1024 || !s.startsWith(PREFIX)) throw new CodeError("code.not_a_code");
  const c: EnrollCode = { server: "", election: "", token: "", fingerprint: "", tls: "" };
  const seen = new Set<string>();
  for (const part of s.slice(PREFIX.length).split("&")) {
    const eq = part.indexOf("=");
    const dec = (x: string) => decodeURIComponent(x.replace(/\+/g, " "));
    let k: string, v: string;
    try {
      k = dec(eq < 0 ? part : part.slice(0, eq));
      v = dec(eq < 0 ? "" : part.slice(eq + 1));
    } catch {
      throw new CodeError("code.bad");
    }
    if (seen.has(k)) throw new CodeError("code.bad");
    seen.add(k);
    switch (k) {
      case "server": c.server = v; break;
      case "election": c.election = v; break;
      case "token": c.token = v.toUpperCase(); break;
      case "fp": c.fingerprint = v; break;
      case "tls": c.tls = v; break;
      default: throw new CodeError("code.bad");
    }
  }
  // 16 bytes in unpadded base32 are 26 letters.
  if (!c.server || !c.election || !c.fingerprint || c.token.length !== 26 || !B32.test(c.token)) throw new CodeError("code.bad");
  return c;
}
