// The ballot as the canvasser fills it in, checked by the rules the
// server applies (so nothing saved at the door is refused for its form
// later) and by the device's own, shared with the CLI: who signed must be
// said, only a proxy names a document, a ballot with no choice at all is
// an explicit blank, a second ballot for a unit is only ever a revision,
// and a revision starts from the earlier ballot and shows what changed.

import { create } from "@bufbuild/protobuf";
import {
  BallotSchema,
  Choice,
  SelectionSchema,
  SignerKind,
  type Ballot,
  type Item,
} from "./gen/doorstep/v1/record_pb.js";
import { utf8 } from "./bytes.js";
import type { Election } from "./election.js";

export type Answer = { choice?: "yes" | "no" | "abstain"; picks?: string[] };
export type Signer = "" | "owner" | "co_owner" | "proxy";

export interface BallotForm {
  unitId: string;
  answers: { [itemId: string]: Answer };
  blank: boolean;
  signer: Signer;
  proxyRef: string;
  signerName: string;
  comment: string;
  supersedes: string;
}

export function emptyForm(unitId: string): BallotForm {
  return { unitId, answers: {}, blank: false, signer: "", proxyRef: "", signerName: "", comment: "", supersedes: "" };
}

/** FormError names the field and the catalogue key of the message. */
export class FormError extends Error {
  constructor(public field: string, public key: string, public args: (string | number)[] = []) {
    super(`${field}: ${key} ${args.join(" ")}`);
  }
}

function hasAnswer(a: Answer | undefined): boolean {
  return !!a && (!!a.choice || (a.picks?.length ?? 0) > 0);
}

function checkText(field: string, s: string, max: number): void {
  if (utf8(s).length > max) throw new FormError(field, "err.too_long", [max]);
  if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(s)) throw new FormError(field, "err.control");
}

/** resolvePick reads a pick given as a candidate id or name. */
export function resolvePick(item: Item, given: string): string | undefined {
  if (item.kind.case !== "candidates") return undefined;
  const cs = item.kind.value.candidates;
  return (cs.find((c) => c.candidateId === given) ?? cs.find((c) => c.name === given.trim()))?.candidateId;
}

/**
 * checkForm validates a ballot before review. hasBallot says whether this
 * device already holds a ballot for the unit; then only a revision
 * (supersedes set) may be saved.
 */
export function checkForm(e: Election, f: BallotForm, hasBallot: boolean): void {
  if (!e.units.some((u) => u.unitId === f.unitId)) throw new FormError("unit", "err.unknown_unit", [f.unitId]);
  if (hasBallot && !f.supersedes) throw new FormError("unit", "err.second_ballot", [f.unitId]);
  for (const [id, a] of Object.entries(f.answers)) {
    const item = e.items.find((i) => i.itemId === id);
    if (!item) throw new FormError(id, "err.unknown_item", [id]);
    if (item.kind.case === "motion" && a.picks?.length) throw new FormError(id, "err.unknown_item", [id]);
    if (item.kind.case === "candidates") {
      const seats = item.kind.value.seats;
      const picks = a.picks ?? [];
      if (a.choice) throw new FormError(id, "err.unknown_item", [id]);
      const ids = picks.map((p) => resolvePick(item, p));
      picks.forEach((p, i) => {
        if (!ids[i]) throw new FormError(id, "err.unknown_candidate", [p]);
      });
      if (new Set(ids).size !== ids.length) throw new FormError(id, "err.pick_twice");
      if (picks.length > seats) throw new FormError(id, "err.too_many_picks", [seats]);
    }
  }
  const any = Object.values(f.answers).some(hasAnswer);
  if (!any && !f.blank) throw new FormError("blank", "err.no_choice");
  if (any && f.blank) throw new FormError("blank", "err.blank_with_choice");
  switch (f.signer) {
    case "owner":
    case "co_owner":
      if (f.proxyRef) throw new FormError("proxy_reference", "err.proxy_only");
      break;
    case "proxy":
      if (!f.proxyRef.trim()) throw new FormError("proxy_reference", "err.proxy_ref");
      break;
    default:
      throw new FormError("signer", "err.signer");
  }
  checkText("proxy_reference", f.proxyRef, 512);
  checkText("signer_name", f.signerName, 512);
  checkText("comment", f.comment, 4096);
}

const signerKinds: Record<Exclude<Signer, "">, SignerKind> = {
  owner: SignerKind.OWNER,
  co_owner: SignerKind.CO_OWNER,
  proxy: SignerKind.PROXY,
};

const choices = { yes: Choice.YES, no: Choice.NO, abstain: Choice.ABSTAIN } as const;

/** toBallot is the record's ballot body; items left out are abstentions. */
export function toBallot(e: Election, f: BallotForm): Ballot {
  const selections = [];
  for (const item of e.items) {
    const a = f.answers[item.itemId];
    if (!hasAnswer(a)) continue;
    if (item.kind.case === "candidates") {
      selections.push(create(SelectionSchema, { itemId: item.itemId, candidateIds: a.picks!.map((p) => resolvePick(item, p)!) }));
    } else {
      selections.push(create(SelectionSchema, { itemId: item.itemId, choice: choices[a.choice!] }));
    }
  }
  return create(BallotSchema, {
    unitId: f.unitId,
    selections,
    signerKind: signerKinds[f.signer as Exclude<Signer, "">],
    proxyReference: f.signer === "proxy" ? f.proxyRef : "",
    signerName: f.signerName,
    comment: f.comment,
    supersedes: f.supersedes,
  });
}

/** reviseFrom starts a revision from the earlier ballot: everything as it was, superseding it. */
export function reviseFrom(earlier: BallotForm, earlierRecordId: string): BallotForm {
  return { ...structuredClone(earlier), supersedes: earlierRecordId };
}

export interface Change {
  field: string;
  before: string;
  after: string;
}

/** describe renders one answer for people: names, not ids. */
export function describeAnswer(item: Item, a: Answer | undefined, words: (k: string) => string): string {
  if (!hasAnswer(a)) return words("ballot.abstain_none");
  if (item.kind.case === "candidates") {
    const cs = item.kind.value.candidates;
    return a!.picks!.map((p) => cs.find((c) => c.candidateId === resolvePick(item, p))?.name ?? p).join("、");
  }
  return words("choice." + a!.choice);
}

/** changes lists what a revision changes, item by item and field by field. */
export function changes(e: Election, before: BallotForm, after: BallotForm, words: (k: string) => string): Change[] {
  const out: Change[] = [];
  for (const item of e.items) {
    const b = describeAnswer(item, before.answers[item.itemId], words);
    const a = describeAnswer(item, after.answers[item.itemId], words);
    if (a !== b) out.push({ field: item.title || item.itemId, before: b, after: a });
  }
  const plain: [keyof BallotForm, string][] = [
    ["signer", "form.signer"],
    ["proxyRef", "form.proxy_ref"],
    ["signerName", "form.signer_name"],
    ["comment", "form.comment"],
  ];
  for (const [k, label] of plain) {
    const b = String(before[k]), a = String(after[k]);
    const show = (v: string) => (k === "signer" && v ? words("signer." + v) : v);
    if (a !== b) out.push({ field: words(label), before: show(b), after: show(a) });
  }
  if (before.blank !== after.blank) out.push({ field: words("form.blank"), before: String(before.blank), after: String(after.blank) });
  return out;
}
