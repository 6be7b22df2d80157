import { createHash } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from '../lib/canonical';
import { sha256Hex } from '../lib/hash';
import type { Distro, Package } from './detectors/types';
import { SCANNER_NAME, SCANNER_VERSION } from './version';

/**
 * CycloneDX 1.6 JSON SBOM. Output is a pure function of its input: components are
 * sorted by purl, properties sorted, the timestamp is supplied by the caller and the
 * serial number is a name-based UUID over the artifact digest and the BOM content, so
 * the canonical bytes of the same scan are identical every time.
 */

export interface CdxProperty {
  name: string;
  value: string;
}

export interface CdxComponent {
  type: 'library' | 'operating-system' | 'container';
  'bom-ref': string;
  name: string;
  version?: string;
  description?: string;
  purl?: string;
  cpe?: string;
  hashes?: Array<{ alg: 'SHA-256'; content: string }>;
  licenses?: Array<{ license: { name: string } } | { expression: string }>;
  properties?: CdxProperty[];
}

export interface CycloneDxBom {
  bomFormat: 'CycloneDX';
  specVersion: '1.6';
  serialNumber: string;
  version: 1;
  metadata: {
    timestamp: string;
    tools: { components: Array<{ type: 'application'; name: string; version: string }> };
    component: CdxComponent;
    properties?: CdxProperty[];
  };
  components: CdxComponent[];
}

export interface SbomInput {
  artifactDigest: string;
  imageRef?: string;
  packages: readonly Package[];
  distro?: Distro;
  /** The scan time, passed in so output is reproducible. */
  timestamp: Date | string;
  /**
   * Extra facts about the image, recorded as metadata.component properties. The
   * transport (directory vs tar) is deliberately not among them: the same image gives
   * the same SBOM however it was handed to us.
   */
  image?: { digestKind?: string; configDigest?: string; platform?: { os?: string; architecture?: string; variant?: string } };
  tool?: { name: string; version: string };
}

// Fixed namespace for stella SBOM serial numbers (RFC 4122 name-based UUIDs).
const SERIAL_NAMESPACE = 'c18f8c5e-4b1a-4b2e-bf30-7b4c706541ed';

/** RFC 4122 version-5 UUID (SHA-1, name-based); CycloneDX's schema only admits versions 1-5. */
export function uuidV5(name: string, namespace = SERIAL_NAMESPACE): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const b = createHash('sha1').update(ns).update(name, 'utf8').digest().subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const sortProps = (p: CdxProperty[]) => p.sort((a, b) => cmp(a.name, b.name) || cmp(a.value, b.value));

function licenses(ls: readonly string[] | undefined): CdxComponent['licenses'] {
  if (!ls?.length) return undefined;
  // Without the SPDX list at hand, names are recorded verbatim; only obvious expressions use `expression`.
  return ls.map((l) => (/\s(AND|OR|WITH)\s/.test(l) ? { expression: l } : { license: { name: l } }));
}

function component(p: Package): CdxComponent {
  const props: CdxProperty[] = [
    { name: 'stella:package:ecosystem', value: p.ecosystem },
    ...p.locations.map((l) => ({ name: 'stella:package:location', value: l })),
  ];
  if (p.arch) props.push({ name: 'stella:package:arch', value: p.arch });
  if (p.source) props.push({ name: 'stella:package:source-name', value: p.source.name }, { name: 'stella:package:source-version', value: p.source.version });
  if (p.dev) props.push({ name: 'stella:npm:dev', value: 'true' });
  if (p.layer) props.push({ name: 'stella:package:layer', value: p.layer });
  // CycloneDX has one cpe per component; further candidates go in properties.
  for (const c of p.cpes?.slice(1) ?? []) props.push({ name: 'stella:package:cpe', value: c });
  const lic = licenses(p.licenses);
  return {
    type: 'library',
    'bom-ref': p.purl,
    name: p.name,
    version: p.version,
    purl: p.purl,
    ...(p.cpes?.length ? { cpe: p.cpes[0] } : {}),
    ...(lic ? { licenses: lic } : {}),
    properties: sortProps(props),
  };
}

export function buildCycloneDx(input: SbomInput): CycloneDxBom {
  const timestamp = new Date(input.timestamp);
  if (Number.isNaN(timestamp.getTime())) throw new Error(`invalid SBOM timestamp ${String(input.timestamp)}`);
  const tool = input.tool ?? { name: SCANNER_NAME, version: SCANNER_VERSION };

  const imageProps: CdxProperty[] = [];
  const img = input.image ?? {};
  if (img.digestKind) imageProps.push({ name: 'stella:image:digest-kind', value: img.digestKind });
  if (img.configDigest) imageProps.push({ name: 'stella:image:config-digest', value: img.configDigest });
  const plat = [img.platform?.os, img.platform?.architecture, img.platform?.variant].filter(Boolean).join('/');
  if (plat) imageProps.push({ name: 'stella:image:platform', value: plat });
  if (input.imageRef) imageProps.push({ name: 'stella:image:ref', value: input.imageRef });

  const components = input.packages.map(component);
  if (input.distro) {
    const d = input.distro;
    components.push({
      type: 'operating-system',
      'bom-ref': `os:${d.id}${d.versionId ? `@${d.versionId}` : ''}`,
      name: d.id,
      ...(d.versionId ? { version: d.versionId } : {}),
      ...(d.prettyName ? { description: d.prettyName } : {}),
      properties: sortProps([
        { name: 'stella:os:location', value: d.location },
        ...(d.versionCodename ? [{ name: 'stella:os:codename', value: d.versionCodename }] : []),
      ]),
    });
  }
  components.sort((a, b) => cmp(a['bom-ref'], b['bom-ref']));
  const refs = new Set<string>();
  for (const c of components) {
    if (refs.has(c['bom-ref'])) throw new Error(`duplicate bom-ref ${c['bom-ref']}`);
    refs.add(c['bom-ref']);
  }

  const body: Omit<CycloneDxBom, 'serialNumber'> = {
    bomFormat: 'CycloneDX',
    specVersion: '1.6',
    version: 1,
    metadata: {
      timestamp: timestamp.toISOString(),
      tools: { components: [{ type: 'application', name: tool.name, version: tool.version }] },
      component: {
        type: 'container',
        'bom-ref': input.artifactDigest,
        name: input.imageRef ?? input.artifactDigest,
        version: input.artifactDigest,
        hashes: [{ alg: 'SHA-256', content: input.artifactDigest.replace(/^sha256:/, '') }],
        ...(imageProps.length ? { properties: sortProps(imageProps) } : {}),
      },
    },
    components,
  };
  const serialNumber = `urn:uuid:${uuidV5(`${input.artifactDigest}\n${sha256Hex(canonicalJson(body))}`)}`;
  return { ...body, serialNumber } as CycloneDxBom;
}

/** Canonical JSON bytes of an SBOM: what gets hashed and stored. */
export function sbomBytes(bom: CycloneDxBom): Buffer {
  return Buffer.from(canonicalJson(bom), 'utf8');
}

const PropertySchema = z.object({ name: z.string().min(1), value: z.string() });
const ComponentSchema = z.looseObject({
  type: z.enum([
    'application',
    'framework',
    'library',
    'container',
    'platform',
    'operating-system',
    'device',
    'device-driver',
    'firmware',
    'file',
    'machine-learning-model',
    'data',
    'cryptographic-asset',
  ]),
  'bom-ref': z.string().min(1).optional(),
  name: z.string().min(1),
  version: z.string().optional(),
  purl: z.string().startsWith('pkg:').optional(),
  hashes: z
    .array(z.object({ alg: z.string(), content: z.string().regex(/^([a-fA-F0-9]{32}|[a-fA-F0-9]{40}|[a-fA-F0-9]{64}|[a-fA-F0-9]{96}|[a-fA-F0-9]{128})$/) }))
    .optional(),
  licenses: z
    .array(z.union([z.object({ license: z.union([z.object({ id: z.string() }), z.object({ name: z.string() })]) }), z.object({ expression: z.string() })]))
    .optional(),
  properties: z.array(PropertySchema).optional(),
});
const BomSchema = z.looseObject({
  bomFormat: z.literal('CycloneDX'),
  specVersion: z.literal('1.6'),
  serialNumber: z.string().regex(/^urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[1-5][0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$/),
  version: z.number().int().min(1),
  metadata: z.looseObject({
    timestamp: z.iso.datetime(),
    tools: z.looseObject({ components: z.array(ComponentSchema).min(1) }),
    component: ComponentSchema.refine((c) => c.type === 'container', 'metadata.component must be a container'),
  }),
  components: z.array(ComponentSchema),
});

/** Structural validation against the parts of the CycloneDX 1.6 schema we produce. */
export function validateCycloneDx(bom: unknown): { valid: boolean; errors: string[] } {
  const r = BomSchema.safeParse(bom);
  const errors = r.success ? [] : r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  if (r.success) {
    const seen = new Set<string>();
    for (const c of r.data.components) {
      const ref = c['bom-ref'];
      if (ref === undefined) continue;
      if (seen.has(ref)) errors.push(`components: duplicate bom-ref ${ref}`);
      seen.add(ref);
    }
  }
  return { valid: errors.length === 0, errors };
}
