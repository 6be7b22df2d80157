import { canonicalJson } from '../../lib/canonical';
import { sha256Digest } from '../../lib/hash';
import { verifyEnvelope, type Envelope } from '../../crypto/dsse';
import { rootPackResolver, type RootPack } from '../../crypto/rootpack';
import { feedFromRecords, matchPackages, type Finding } from '../../scanner/osv';
import type { Distro, Package } from '../../scanner/detectors/types';
import { MANIFEST_PAYLOAD_TYPE, validateManifest, manifestBytes, type ReplayManifest } from './manifest';
import { readBundle, jsonFile } from './bundles';
import { scannerIdentity } from './tools';
import { decideVerdict, VerdictPolicySchema, type Verdict } from './verdict';

/**
 * Replay failure codes. Each names one way a recorded scan can fail to reproduce; the
 * nightly job stores them and `stella verify --explain` prints them with a diff.
 */
export type ReplayCode =
  | 'MANIFEST_INVALID'
  | 'SIGNATURE_MISSING'
  | 'SIGNATURE_INVALID'
  | 'SIGNER_UNTRUSTED'
  | 'MANIFEST_MISMATCH'
  | 'INPUT_DIGEST_MISMATCH'
  | 'OUTPUT_DIGEST_MISMATCH'
  | 'FEED_DIGEST_MISMATCH'
  | 'SCANNER_VERSION_DRIFT'
  | 'TOOL_HASH_DRIFT'
  | 'FINDINGS_MISMATCH'
  | 'VERDICT_MISMATCH'
  | 'BUNDLE_UNREADABLE';

export interface ReplayProblem {
  code: ReplayCode;
  detail: string;
  severity: 'error' | 'warning';
}

export interface ReplayResult {
  ok: boolean;
  strict: boolean;
  scanId: string | null;
  artifactDigest: string | null;
  signer: { keyid: string; valid: boolean; trusted: boolean; reason: string }[];
  recorded: { verdict: string | null; counts: Record<string, number> | null };
  recomputed: Verdict | null;
  problems: ReplayProblem[];
  diff: { findingsAdded: string[]; findingsRemoved: string[]; findingsChanged: string[]; verdict?: { recorded: string; recomputed: string } } | null;
}

export interface ReplayInputs {
  manifest: unknown;
  envelope: Envelope | null;
  inputBundle: Uint8Array | null;
  outputBundle: Uint8Array | null;
  rootpack: RootPack;
  strict?: boolean;
  /** Why a stored file is absent (online replay): missing from, or corrupt in, the replay store. */
  storedProblems?: Partial<Record<'manifest' | 'envelope' | 'input' | 'output', string>>;
}

const findingKey = (f: Pick<Finding, 'id' | 'package'>) => `${f.id}|${f.package.ecosystem}|${f.package.name}|${f.package.version}`;

type Report = (code: ReplayCode, detail: string) => void;
type ReplayDiff = NonNullable<ReplayResult['diff']>;

/** Verifies signature, digests and tools, then recomputes the verdict from the input bundle alone. */
export async function replayVerify(inp: ReplayInputs): Promise<ReplayResult> {
  const strict = !!inp.strict;
  const problems: ReplayProblem[] = [];
  const err: Report = (code, detail) => problems.push({ code, detail, severity: 'error' });
  const warn: Report = (code, detail) => problems.push({ code, detail, severity: strict ? 'error' : 'warning' });
  const result: ReplayResult = {
    ok: false,
    strict,
    scanId: null,
    artifactDigest: null,
    signer: [],
    recorded: { verdict: null, counts: null },
    recomputed: null,
    problems,
    diff: null,
  };

  let m: ReplayManifest;
  try {
    m = validateManifest(inp.manifest);
  } catch (e) {
    err('MANIFEST_INVALID', inp.storedProblems?.manifest ?? (e as Error).message);
    return result;
  }
  result.scanId = m.scanId;
  result.artifactDigest = m.artifactDigest;
  result.recorded = { verdict: m.verdict, counts: m.counts ?? null };

  checkSignature(inp, m, result, err);
  const inputOk = checkDigest(inp.inputBundle, m.inputBundle, 'INPUT_DIGEST_MISMATCH', 'inputbundle.tar.zst', err, inp.storedProblems?.input);
  const outputOk = checkDigest(inp.outputBundle, m.outputBundle, 'OUTPUT_DIGEST_MISMATCH', 'outputbundle.tar.zst', err, inp.storedProblems?.output);
  await checkToolDrift(m, warn);
  if (inputOk && inp.inputBundle) await recompute(inp.inputBundle, outputOk ? inp.outputBundle : null, m, result, err);
  result.ok = !problems.some((p) => p.severity === 'error');
  return result;
}

/** Signature: trusted for the signing time, so a key rotated out later still verifies. */
function checkSignature(inp: ReplayInputs, m: ReplayManifest, result: ReplayResult, err: Report): void {
  if (!inp.envelope) {
    err('SIGNATURE_MISSING', inp.storedProblems?.envelope ?? 'no DSSE envelope for the manifest');
    return;
  }
  try {
    const v = verifyEnvelope(inp.envelope, rootPackResolver(inp.rootpack), new Date(m.createdAt));
    result.signer = v.signatures;
    if (v.payloadType !== MANIFEST_PAYLOAD_TYPE) err('SIGNATURE_INVALID', `payload type ${v.payloadType}, expected ${MANIFEST_PAYLOAD_TYPE}`);
    if (!v.ok) {
      const known = new Set(inp.rootpack.keys.map((k) => k.kid));
      // A signer the RootPack does not know (or no longer trusts) is a trust failure, not a bad signature.
      if (v.signatures.some((s) => (s.valid && !s.trusted) || !known.has(s.keyid)))
        err('SIGNER_UNTRUSTED', v.signatures.map((s) => `${s.keyid}: ${s.reason}`).join('; '));
      else err('SIGNATURE_INVALID', v.signatures.map((s) => `${s.keyid}: ${s.reason}`).join('; ') || 'no valid signature');
    }
    if (!Buffer.from(v.payload).equals(manifestBytes(m))) err('MANIFEST_MISMATCH', 'the signed payload differs from manifest.json');
  } catch (e) {
    err('SIGNATURE_INVALID', (e as Error).message);
  }
}

function checkDigest(
  bytes: Uint8Array | null,
  want: { digest: string; size: number },
  code: ReplayCode,
  name: string,
  err: Report,
  whyAbsent?: string,
): boolean {
  if (!bytes) {
    err('BUNDLE_UNREADABLE', whyAbsent ?? `${name} is missing`);
    return false;
  }
  const got = sha256Digest(bytes);
  if (got !== want.digest) {
    err(code, `${name} hashes to ${got}, manifest says ${want.digest}`);
    return false;
  }
  return true;
}

/** The scanner and its tools as recorded versus this installation (warnings unless strict). */
async function checkToolDrift(m: ReplayManifest, warn: Report): Promise<void> {
  const here = await scannerIdentity();
  if (m.scanner.version !== here.version) warn('SCANNER_VERSION_DRIFT', `recorded with ${m.scanner.name} ${m.scanner.version}, replaying with ${here.version}`);
  for (const [tool, hash] of Object.entries(m.scanner.toolHashes)) {
    if (here.toolHashes[tool] !== hash) warn('TOOL_HASH_DRIFT', `${tool}: recorded ${hash}, this installation has ${here.toolHashes[tool] ?? 'none'}`);
  }
}

/** Recompute from the input bundle alone: inventory → advisory match → policy verdict; then compare with the (verified) output bundle. */
async function recompute(input: Uint8Array, output: Uint8Array | null, m: ReplayManifest, result: ReplayResult, err: Report): Promise<void> {
  try {
    const files = await readBundle(input);
    const inventory = jsonFile<{ packages: Package[]; distro?: Distro }>(files, 'inventory.json', 'input bundle');
    const records = jsonFile<unknown[]>(files, 'feed/records.json', 'input bundle');
    const policy = VerdictPolicySchema.parse(jsonFile(files, 'policy.json', 'input bundle'));
    const feed = feedFromRecords(records, 'input-bundle');
    if (m.feedDigest && feed.digest !== m.feedDigest) err('FEED_DIGEST_MISMATCH', `feed snapshot hashes to ${feed.digest}, manifest says ${m.feedDigest}`);
    const findings = matchPackages(inventory.packages, feed, inventory.distro);
    result.recomputed = decideVerdict(policy, findings);
    if (output) result.diff = await compareWithRecorded(output, findings, result.recomputed, m, err);
  } catch (e) {
    err('BUNDLE_UNREADABLE', (e as Error).message);
  }
}

/** The recorded findings and verdict (output bundle) against the recomputed ones. */
async function compareWithRecorded(output: Uint8Array, findings: Finding[], recomputed: Verdict, m: ReplayManifest, err: Report): Promise<ReplayDiff> {
  const out = await readBundle(output);
  const recordedFindings = jsonFile<Finding[]>(out, 'findings.json', 'output bundle');
  const recordedVerdict = jsonFile<Verdict>(out, 'verdict.json', 'output bundle');
  const diff = diffFindings(recordedFindings, findings);
  if (diff.findingsAdded.length || diff.findingsRemoved.length || diff.findingsChanged.length) {
    err('FINDINGS_MISMATCH', `${diff.findingsAdded.length} added, ${diff.findingsRemoved.length} removed, ${diff.findingsChanged.length} changed`);
  }
  if (recordedVerdict.status !== recomputed.status || recordedVerdict.status !== m.verdict) {
    diff.verdict = { recorded: `${recordedVerdict.status} (manifest: ${m.verdict})`, recomputed: recomputed.status };
    err('VERDICT_MISMATCH', `recorded ${recordedVerdict.status}, recomputed ${recomputed.status}`);
  }
  return diff;
}

function diffFindings(recorded: Finding[], recomputed: Finding[]): ReplayDiff {
  const a = new Map(recorded.map((f) => [findingKey(f), canonicalJson(f)]));
  const b = new Map(recomputed.map((f) => [findingKey(f), canonicalJson(JSON.parse(JSON.stringify(f)))]));
  return {
    findingsAdded: [...b.keys()].filter((k) => !a.has(k)).sort(),
    findingsRemoved: [...a.keys()].filter((k) => !b.has(k)).sort(),
    findingsChanged: [...b.keys()].filter((k) => a.has(k) && a.get(k) !== b.get(k)).sort(),
  };
}
