// The canvasser's screens: join, the walk list by building and floor, a
// unit's page (ballot, revision, visits), the ballot form generated from
// the election definition, the review before saving, and the receipt.
// Everything works offline; sync runs whenever the network is there.

import { createConnectTransport } from "@connectrpc/connect-web";
import { ConnectError } from "@connectrpc/connect";
import { Device, DeviceError, JoinedButError } from "./device.js";
import { Store, type RecordRow } from "./db.js";
import { changes, checkForm, describeAnswer, emptyForm, FormError, reviseFrom, type BallotForm, type Signer } from "./ballot.js";
import { floorOf } from "./election.js";
import { CodeError } from "./enrollcode.js";
import { translate, type Lang } from "./i18n.js";
import { UnitProgress } from "./gen/doorstep/v1/sync_service_pb.js";
import { VisitOutcome } from "./gen/doorstep/v1/record_pb.js";

let lang: Lang = localStorage.getItem("doorstep-lang") === "en" ? "en" : "zh";
const T = (k: string, ...a: (string | number)[]) => translate(lang, k, ...a);

const root = document.getElementById("app")!;
let dev: Device;
let draft: { form: BallotForm; before?: BallotForm } | undefined;
let syncState = "";
let persisted: boolean | undefined;

type Attrs = { [k: string]: string | boolean | number | undefined };
function h(tag: string, attrs: Attrs = {}, ...kids: (Node | string | undefined | false)[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k === "text") el.textContent = String(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const kid of kids) if (kid !== undefined && kid !== false) el.append(kid);
  return el;
}

function on(el: HTMLElement, ev: string, fn: (e: Event) => unknown): HTMLElement {
  el.addEventListener(ev, (e) => {
    void Promise.resolve(fn(e)).catch(showError);
  });
  return el;
}

function message(err: unknown): string {
  if (err instanceof FormError || err instanceof DeviceError) return T((err as FormError).key, ...((err as FormError).args ?? [(err as DeviceError).detail]));
  if (err instanceof CodeError) return T(err.message);
  if (err instanceof ConnectError) return err.rawMessage || err.message;
  return err instanceof Error ? err.message : String(err);
}

function showError(err: unknown): void {
  const box = document.getElementById("error");
  if (box) {
    box.textContent = message(err);
    box.hidden = false;
  }
  console.error(err);
}

function go(hash: string): void {
  if (location.hash === hash) void render();
  else location.hash = hash;
}

// ---- header: language, device, waiting count, storage, sync ----

async function header(): Promise<HTMLElement> {
  // The device keeps the count in step with the outbox: the header is
  // drawn after every save and reads nothing.
  const { records, ballots } = dev.waiting;
  const lastSync = await dev.store.get<number>("lastSync");
  return h(
    "header",
    {},
    h("div", { class: "bar" }, h("strong", { text: dev.election?.title || T("app.title") }), on(h("button", { id: "lang", class: "link", text: T("lang.switch") }), "click", () => {
      lang = lang === "zh" ? "en" : "zh";
      localStorage.setItem("doorstep-lang", lang);
      document.documentElement.lang = lang;
      return render();
    })),
    dev.enr && h("div", { id: "device", class: "small", text: T("home.device", `${dev.enr.label} · ${dev.enr.deviceId}`) }),
    dev.enr &&
      h(
        "div",
        { class: "sync" },
        h("span", { id: "waiting", "data-ballots": ballots, "data-records": records, class: records ? "warn" : "ok", text: records ? T("home.waiting", ballots, records) : T("home.all_sent") }),
        on(h("button", { id: "sync-now", text: T("home.sync_now") }), "click", () => syncNow()),
      ),
    dev.enr && h("div", { id: "sync-state", class: "small", text: syncState || (lastSync ? T("home.synced", new Date(lastSync).toLocaleTimeString()) : "") }),
    persisted !== undefined && dev.enr && h("div", { id: "persist", class: "small", "data-persisted": String(persisted), text: persisted ? T("home.persist_yes") : T("home.persist_no") }),
    h("p", { id: "error", class: "error", hidden: true }),
  );
}

// ---- join ----

function joinScreen(): HTMLElement {
  const code = h("textarea", { id: "code", rows: 4, autocomplete: "off", spellcheck: "false" }) as HTMLTextAreaElement;
  const pre = new URLSearchParams(location.hash.slice(location.hash.indexOf("?") + 1)).get("code");
  if (pre) code.value = pre;
  const label = h("input", { id: "label", autocomplete: "name" }) as HTMLInputElement;
  const status = h("p", { id: "join-status", class: "small" });
  const video = h("video", { id: "scan-video", hidden: true, playsinline: true, muted: true }) as HTMLVideoElement;
  const hasScanner = "BarcodeDetector" in window && !!navigator.mediaDevices?.getUserMedia;
  return h(
    "main",
    {},
    h("h1", { text: T("join.title") }),
    h("p", { text: T("join.help") }),
    hasScanner
      ? on(h("button", { id: "scan", text: T("join.scan") }), "click", async () => {
          status.textContent = T("join.scanning");
          const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
          video.srcObject = stream;
          video.hidden = false;
          await video.play();
          // eslint-disable-next-line @typescript-eslint/no-explicit-any
          const det = new (window as any).BarcodeDetector({ formats: ["qr_code"] });
          const tick = async () => {
            const found = (await det.detect(video)) as { rawValue: string }[];
            const hit = found.find((f) => f.rawValue.includes("doorstep:enroll?"));
            if (!hit) return void setTimeout(tick, 250);
            stream.getTracks().forEach((t) => t.stop());
            video.hidden = true;
            const raw = hit.rawValue;
            code.value = raw.startsWith("doorstep:") ? raw : new URLSearchParams(raw.slice(raw.indexOf("?") + 1)).get("code") ?? raw;
            status.textContent = "";
          };
          void tick();
        })
      : h("p", { class: "small", text: T("join.scan_none") }),
    video,
    h("label", { for: "code", text: T("join.code") }),
    code,
    h("label", { for: "label", text: T("join.label") }),
    label,
    on(h("button", { id: "join", class: "primary", text: T("join.button") }), "click", async (e) => {
      const btn = e.target as HTMLButtonElement;
      btn.disabled = true;
      status.textContent = T("join.working");
      try {
        await dev.join(code.value, label.value.trim());
        persisted = await askPersist();
        go("#home");
      } catch (err) {
        status.textContent = "";
        btn.disabled = false;
        if (!(err instanceof JoinedButError)) throw err;
        // Joined: the token is spent. The list shows what is missing and
        // sync keeps trying.
        persisted = await askPersist();
        go("#home");
        syncState = T("join.failed", message(err.cause));
        kick();
      }
    }),
    status,
  );
}

async function askPersist(): Promise<boolean> {
  if (!navigator.storage?.persist) return false;
  return (await navigator.storage.persisted()) || (await navigator.storage.persist());
}

// ---- walk list ----

type UnitStatus = "done" | "revisit" | "not_home" | "refused" | "todo";

async function unitStatuses(): Promise<Map<string, UnitStatus>> {
  const out = new Map<string, UnitStatus>();
  for (const u of await dev.store.units()) {
    let s: UnitStatus = "todo";
    if (u.progress === UnitProgress.DONE || u.progress === UnitProgress.CONTESTED) s = "done";
    else if (u.lastVisit === VisitOutcome.NOT_HOME) s = "not_home";
    else if (u.lastVisit === VisitOutcome.REFUSED) s = "refused";
    else if (u.progress === UnitProgress.VISITED) s = "revisit";
    out.set(u.unitId, s);
  }
  // This phone's own records are at least as new as the server's word.
  const rows = (await dev.store.allRecords()).sort((a, b) => a.seq - b.seq);
  for (const r of rows) {
    if (r.kind === "ballot" && r.status !== "REJECTED") out.set(r.unitId, "done");
    else if (r.kind === "visit" && out.get(r.unitId) !== "done") {
      out.set(r.unitId, r.outcome === VisitOutcome.NOT_HOME ? "not_home" : r.outcome === VisitOutcome.REFUSED ? "refused" : "revisit");
    }
  }
  return out;
}

async function homeScreen(): Promise<HTMLElement> {
  const e = dev.election;
  const main = h("main", { id: "walk" });
  if (!e) {
    main.append(h("p", { text: T("err.no_election") }));
    return main;
  }
  const st = await unitStatuses();
  const rejected = (await dev.store.allRecords()).filter((r) => r.status === "REJECTED").length;
  if (rejected > 0) main.append(h("p", { id: "rejected", class: "error", text: T("home.rejected", rejected) }));
  const counts = new Map<UnitStatus, number>();
  const byBuilding = new Map<string, Map<string, string[]>>();
  for (const u of e.units) {
    const b = u.building || u.unitId.split("-")[0];
    const f = floorOf(u.unitId);
    if (!byBuilding.has(b)) byBuilding.set(b, new Map());
    const floors = byBuilding.get(b)!;
    if (!floors.has(f)) floors.set(f, []);
    floors.get(f)!.push(u.unitId);
    const s = st.get(u.unitId) ?? "todo";
    counts.set(s, (counts.get(s) ?? 0) + 1);
  }
  const legend = h("p", { id: "legend", class: "legend" });
  for (const s of ["done", "revisit", "not_home", "refused", "todo"] as UnitStatus[]) {
    legend.append(h("span", { class: "chip " + s, "data-status": s, "data-count": counts.get(s) ?? 0, text: `${T("status." + s)} ${counts.get(s) ?? 0}` }));
  }
  main.append(legend);
  const num = (a: string, b: string) => a.localeCompare(b, undefined, { numeric: true });
  for (const b of [...byBuilding.keys()].sort(num)) {
    const sec = h("section", { class: "building" }, h("h2", { text: T("home.building", b) }));
    const floors = byBuilding.get(b)!;
    for (const f of [...floors.keys()].sort(num)) {
      const row = h("div", { class: "floor" }, h("span", { class: "floor-name", text: f ? T("home.floor", f) : "" }));
      for (const id of floors.get(f)!.sort(num)) {
        const s = st.get(id) ?? "todo";
        row.append(h("a", { href: "#unit/" + encodeURIComponent(id), class: "unit " + s, "data-unit": id, "data-status": s, title: T("status." + s) }, id));
      }
      sec.append(row);
    }
    main.append(sec);
  }
  return main;
}

// ---- a unit ----

function recordLine(r: RecordRow): HTMLElement {
  const what = r.kind === "ballot" ? `🗳 ${r.receipt}${r.supersedes ? " ↺" : ""}` : `🚪 ${T("visit." + VisitOutcome[r.outcome ?? 0])}${r.note ? " · " + r.note : ""}`;
  const state = r.pending ? T("record.pending") : T("record." + r.status, r.reason);
  return h("li", { "data-seq": r.seq, "data-kind": r.kind, "data-pending": r.pending }, `#${r.seq} ${what} — ${state}`);
}

async function unitScreen(unitId: string): Promise<HTMLElement> {
  const rows = await dev.store.unitRecords(unitId);
  const ballots = rows.filter((r) => r.kind === "ballot" && r.status !== "REJECTED");
  const note = h("textarea", { id: "visit-note", rows: 2 }) as HTMLTextAreaElement;
  const visits = h("div", { class: "visits" });
  for (const o of ["NOT_HOME", "REFUSED", "BALLOT_LEFT", "MOVED"] as const) {
    visits.append(
      on(h("button", { class: "visit", "data-outcome": o, text: T("visit." + o) }), "click", async () => {
        const r = await dev.saveVisit(unitId, VisitOutcome[o], note.value);
        kick();
        await render();
        const s = document.getElementById("unit-status");
        if (s) s.textContent = T("visit.saved", T("visit." + o)) + ` #${r.seq}`;
      }),
    );
  }
  return h(
    "main",
    { id: "unit" },
    h("h1", { id: "unit-title", text: T("unit.title", unitId) }),
    h("p", { id: "unit-status", class: "ok" }),
    ballots.length === 0
      ? on(h("button", { id: "new-ballot", class: "primary", text: T("unit.ballot") }), "click", () => {
          draft = { form: emptyForm(unitId) };
          go("#ballot");
        })
      : h(
          "div",
          {},
          h("p", { class: "small", text: T("unit.has_ballot") }),
          on(h("button", { id: "revise", class: "primary", text: T("unit.revise") }), "click", () => {
            const last = ballots[ballots.length - 1];
            const before = last.form as BallotForm;
            draft = { form: reviseFrom(before, last.recordId), before };
            go("#ballot");
          }),
        ),
    h("h2", { text: T("unit.visit") }),
    h("label", { for: "visit-note", text: T("unit.note") }),
    note,
    visits,
    h("h2", { text: T("unit.records") }),
    h("ul", { id: "unit-records" }, ...rows.map(recordLine)),
    h("a", { href: "#home", id: "back", text: T("unit.back") }),
  );
}

// ---- the ballot form, generated from the definition ----

function ballotScreen(): HTMLElement {
  const e = dev.election!;
  const d = draft!;
  const f = d.form;
  const form = h("form", { id: "ballot-form" }) as HTMLFormElement;
  form.append(h("h1", { text: d.before ? T("form.revise_title", f.unitId) : T("form.title", f.unitId) }));
  for (const item of e.items) {
    const fs = h("fieldset", { "data-item": item.itemId }, h("legend", { text: item.title || item.itemId }));
    const a = f.answers[item.itemId] ?? {};
    if (item.kind.case === "candidates") {
      fs.append(h("p", { class: "small", text: T("form.pick_at_most", item.kind.value.seats) }));
      for (const c of item.kind.value.candidates) {
        fs.append(h("label", { class: "opt" }, h("input", { type: "checkbox", name: "item-" + item.itemId, value: c.candidateId, checked: a.picks?.includes(c.candidateId) }), c.name || c.candidateId));
      }
    } else {
      for (const c of ["yes", "no", "abstain"] as const) {
        fs.append(h("label", { class: "opt" }, h("input", { type: "radio", name: "item-" + item.itemId, value: c, checked: a.choice === c }), T("choice." + c)));
      }
    }
    form.append(fs);
  }
  form.append(h("label", { class: "opt" }, h("input", { type: "checkbox", id: "blank", checked: f.blank }), T("form.blank")));
  const signer = h("fieldset", {}, h("legend", { text: T("form.signer") }));
  for (const s of ["owner", "co_owner", "proxy"] as const) {
    signer.append(h("label", { class: "opt" }, h("input", { type: "radio", name: "signer", value: s, checked: f.signer === s }), T("signer." + s)));
  }
  form.append(
    signer,
    h("label", { for: "proxy-ref", text: T("form.proxy_ref") }),
    h("input", { id: "proxy-ref", value: f.proxyRef }),
    h("label", { for: "signer-name", text: T("form.signer_name") }),
    h("input", { id: "signer-name", value: f.signerName }),
    h("label", { for: "comment", text: T("form.comment") }),
  );
  const comment = h("textarea", { id: "comment", rows: 3 }) as HTMLTextAreaElement;
  comment.value = f.comment;
  form.append(comment, h("p", { id: "form-error", class: "error" }));
  // At most K picks: further boxes are refused as they are ticked.
  form.addEventListener("change", (ev) => {
    const t = ev.target as HTMLInputElement;
    if (t.type !== "checkbox" || !t.name.startsWith("item-")) return;
    const item = e.items.find((i) => "item-" + i.itemId === t.name);
    if (item?.kind.case === "candidates" && form.querySelectorAll(`input[name="${t.name}"]:checked`).length > item.kind.value.seats) {
      t.checked = false;
      document.getElementById("form-error")!.textContent = T("err.too_many_picks", item.kind.value.seats);
    }
  });
  const read = (): BallotForm => {
    const out: BallotForm = { ...f, answers: {} };
    for (const item of e.items) {
      const inputs = [...form.querySelectorAll<HTMLInputElement>(`input[name="item-${item.itemId}"]:checked`)];
      if (item.kind.case === "candidates") {
        if (inputs.length) out.answers[item.itemId] = { picks: inputs.map((i) => i.value) };
      } else if (inputs.length) out.answers[item.itemId] = { choice: inputs[0].value as "yes" | "no" | "abstain" };
    }
    out.blank = (form.querySelector("#blank") as HTMLInputElement).checked;
    out.signer = ((form.querySelector('input[name="signer"]:checked') as HTMLInputElement | null)?.value ?? "") as Signer;
    out.proxyRef = (form.querySelector("#proxy-ref") as HTMLInputElement).value.trim();
    out.signerName = (form.querySelector("#signer-name") as HTMLInputElement).value.trim();
    out.comment = comment.value;
    return out;
  };
  form.append(
    h(
      "div",
      { class: "actions" },
      on(h("button", { type: "button", id: "cancel", text: T("form.cancel") }), "click", () => go("#unit/" + encodeURIComponent(f.unitId))),
      on(h("button", { type: "button", id: "review", class: "primary", text: T("form.review") }), "click", async () => {
        const next = read();
        try {
          const held = (await dev.ballots(next.unitId)).filter((r) => r.status !== "REJECTED");
          checkForm(e, next, held.length > 0);
        } catch (err) {
          document.getElementById("form-error")!.textContent = message(err);
          return;
        }
        d.form = next;
        go("#review");
      }),
    ),
  );
  return h("main", {}, form);
}

function reviewScreen(): HTMLElement {
  const e = dev.election!;
  const d = draft!;
  const f = d.form;
  const list = h("dl", { id: "review-list" });
  for (const item of e.items) {
    list.append(h("dt", { text: item.title || item.itemId }), h("dd", { "data-item": item.itemId, text: describeAnswer(item, f.answers[item.itemId], T) }));
  }
  if (f.blank) list.append(h("dt", { text: T("form.blank") }), h("dd", { text: "✓" }));
  list.append(h("dt", { text: T("form.signer") }), h("dd", { text: T("signer." + f.signer) + (f.proxyRef ? ` (${f.proxyRef})` : "") + (f.signerName ? ` · ${f.signerName}` : "") }));
  if (f.comment) list.append(h("dt", { text: T("form.comment") }), h("dd", { text: f.comment }));
  let changed: HTMLElement | undefined;
  if (d.before) {
    const cs = changes(e, d.before, f, T);
    changed = h("section", { id: "changes" }, h("h2", { text: T("review.changes") }));
    if (cs.length === 0) changed.append(h("p", { text: T("review.no_changes") }));
    for (const c of cs) {
      changed.append(h("p", { class: "change", "data-field": c.field }, h("strong", { text: c.field + ": " }), h("del", { text: c.before || "—" }), " → ", h("ins", { text: c.after || "—" })));
    }
  }
  return h(
    "main",
    { id: "review-screen" },
    h("h1", { text: T("review.title") }),
    h("p", { text: T("unit.title", f.unitId) }),
    changed,
    list,
    h(
      "div",
      { class: "actions" },
      on(h("button", { id: "back-to-form", text: T("review.back") }), "click", () => go("#ballot")),
      on(h("button", { id: "save", class: "primary", text: T("review.save") }), "click", async (ev) => {
        (ev.target as HTMLButtonElement).disabled = true;
        performance.mark("doorstep-save-start");
        try {
          const row = await dev.saveBallot(f);
          draft = undefined;
          // Only now, with the transaction committed, does the app say so.
          await showSaved(row);
          performance.measure("doorstep-ballot-saved", "doorstep-save-start");
          kick();
        } catch (err) {
          (ev.target as HTMLButtonElement).disabled = false;
          throw err;
        }
      }),
    ),
  );
}

async function showSaved(row: RecordRow): Promise<void> {
  history.replaceState(null, "", "#saved");
  const mine = ++renders;
  const top = await header();
  if (mine !== renders) return;
  root.replaceChildren(
    top,
    h(
      "main",
      { id: "saved" },
      h("h1", { id: "saved-title", class: "ok", "data-seq": row.seq, text: T("saved.title") }),
      h("p", { text: T("saved.receipt") }),
      h("p", { id: "receipt", class: "receipt", text: row.receipt }),
      h("p", { class: "small", text: T("saved.note") }),
      !!dev.election?.closedAtMs && row.savedAt > dev.election.closedAtMs && h("p", { id: "closed-warning", class: "error", text: T("saved.closed", new Date(dev.election.closedAtMs).toLocaleString()) }),
      on(h("button", { id: "done", class: "primary", text: T("saved.done") }), "click", () => go("#home")),
    ),
  );
}

// ---- routing ----

// Renders overlap (a sync ends while the canvasser moves on): only the
// latest one started may fill the screen.
let renders = 0;

async function render(): Promise<void> {
  const mine = ++renders;
  document.documentElement.lang = lang;
  document.title = T("app.title");
  const hash = location.hash || "#home";
  let screen: HTMLElement;
  if (!dev.enr) screen = joinScreen();
  else if (hash.startsWith("#unit/")) screen = await unitScreen(decodeURIComponent(hash.slice(6)));
  else if (hash === "#ballot" && draft && dev.election) screen = ballotScreen();
  else if (hash === "#review" && draft && dev.election) screen = reviewScreen();
  else screen = await homeScreen();
  const top = await header();
  if (mine !== renders) return;
  root.replaceChildren(top, screen);
  root.dataset.ready = "1";
}

// ---- sync: at start, when the network returns, after each save, and on a timer ----

let timer: ReturnType<typeof setTimeout> | undefined;
let failures = 0;

function kick(): void {
  if (timer) clearTimeout(timer);
  timer = setTimeout(() => void syncNow(), 50);
  // Where the browser has Background Sync, it also wakes the worker when
  // the network returns; the worker asks the page to sync.
  void navigator.serviceWorker?.ready
    .then((reg) => (reg as ServiceWorkerRegistration & { sync?: { register(tag: string): Promise<void> } }).sync?.register("doorstep-sync"))
    .catch(() => undefined);
}

async function syncNow(): Promise<void> {
  if (!dev.enr) return;
  if (timer) clearTimeout(timer);
  timer = undefined;
  syncState = T("home.syncing");
  refreshHeader();
  const start = performance.now();
  let synced = false;
  try {
    const rep = await dev.sync();
    performance.measure("doorstep-sync", { start, end: performance.now(), detail: rep });
    failures = 0;
    synced = true;
    syncState = T("home.synced", new Date().toLocaleTimeString());
  } catch (err) {
    failures++;
    syncState = navigator.onLine ? T("home.sync_failed", message(err)) : T("home.offline");
  }
  // Ballots waiting: try again soon, backing off to a minute.
  const waiting = await dev.store.pendingCount();
  const wait = waiting > 0 || failures > 0 ? Math.min(60000, 2000 * 2 ** Math.min(failures, 5)) : 60000;
  timer = setTimeout(() => void syncNow(), wait);
  // Answers and the walk list change the list and the unit pages; a failed
  // pass changes only the header.
  if (synced && (location.hash === "#home" || location.hash === "" || location.hash.startsWith("#unit/"))) await render();
  else refreshHeader();
}

function refreshHeader(): void {
  void header().then((hd) => {
    const old = root.querySelector("header");
    if (old) old.replaceWith(hd);
  });
}

async function start(): Promise<void> {
  const store = await Store.open();
  dev = new Device(store, (interceptors) => createConnectTransport({ baseUrl: location.origin, useBinaryFormat: true, interceptors }));
  await dev.load();
  if (dev.enr) persisted = navigator.storage?.persisted ? await navigator.storage.persisted() : false;
  window.addEventListener("hashchange", () => void render().catch(showError));
  window.addEventListener("online", () => void syncNow());
  window.addEventListener("offline", () => {
    syncState = T("home.offline");
    refreshHeader();
  });
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.addEventListener("message", (ev) => {
      if ((ev.data as { type?: string })?.type === "sync") void syncNow();
    });
    await navigator.serviceWorker.register("sw.js", { scope: "./" }).catch((err) => console.warn("service worker:", err));
  }
  await render();
  if (dev.enr) void syncNow();
}

void start().catch(showError);
