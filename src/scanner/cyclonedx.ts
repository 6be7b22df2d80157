import { createHash } from 'node:crypto';
import { Contrib, Enums, Models, Serialize, Spec, Types } from '@cyclonedx/cyclonedx-library';
import spdxExpressionParse from 'spdx-expression-parse';
import { z } from 'zod';
import { canonicalJson } from '../lib/canonical';
import { sha256Hex } from '../lib/hash';
import { isSpdxExpression } from './detectors/licenses';
import type { Distro, Package } from './detectors/types';
import { SCANNER_NAME, SCANNER_VERSION } from './version';

/**
 * CycloneDX 1.6 JSON SBOM, modelled and normalised with the OWASP CycloneDX library
 * (@cyclonedx/cyclonedx-library): components with purls, SPDX licence ids or one SPDX
 * expression, CPEs, the dependency graph (the image depends on every component; packages on
 * the packages they declare, where the detector knows them), and stella as the tool.
 *
 * Output is a pure function of its input: lists are sorted by the library, the timestamp is
 * supplied by the caller and the serial number is a name-based UUID over the artifact digest
 * and the BOM content, so the canonical bytes of the same scan are identical every time.
 */

export interface CdxProperty {
  name: string;
  value: string;
}

export type CdxLicense = { license: { id: string } | { name: string } } | { expression: string };

/** The normalised JSON of a component, as the library writes it (the fields stella uses). */
export interface CdxComponent {
  type: string;
  'bom-ref'?: string;
  name: string;
  version?: string;
  description?: string;
  purl?: string;
  cpe?: string;
  hashes?: Array<{ alg: string; content: string }>;
  licenses?: CdxLicense[];
  properties?: CdxProperty[];
}

export interface CycloneDxBom {
  $schema?: string;
  bomFormat: 'CycloneDX';
  specVersion: '1.6';
  serialNumber: string;
  version: number;
  metadata: {
    timestamp: string;
    tools: { components: CdxComponent[] };
    component: CdxComponent;
    properties?: CdxProperty[];
  };
  components: CdxComponent[];
  dependencies?: Array<{ ref: string; dependsOn?: string[] }>;
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

const licenseFactory = new Contrib.License.Factories.LicenseFactory((s: string) => {
  spdxExpressionParse(s);
});

/**
 * CycloneDX admits either licence entries (SPDX id or name) or exactly one expression. One
 * compound expression is written as such; several licences that are all valid SPDX join into
 * one `AND` expression when any of them is compound; otherwise each is its own entry, by SPDX
 * id when it is one, else by name.
 */
export function cdxLicenses(ls: readonly string[] | undefined): Models.LicenseRepository {
  const repo = new Models.LicenseRepository();
  const list = [...new Set(ls ?? [])].filter((l) => l.trim() !== '').sort(cmp);
  if (!list.length) return repo;
  const compound = (l: string) => /\s(AND|OR|WITH)\s/i.test(l) && isSpdxExpression(l);
  if (list.some(compound)) {
    if (list.length === 1) {
      repo.add(licenseFactory.makeExpression(list[0]));
      return repo;
    }
    if (list.every(isSpdxExpression)) {
      repo.add(licenseFactory.makeExpression(list.map((l) => (compound(l) ? `(${l})` : l)).join(' AND ')));
      return repo;
    }
  }
  for (const l of list) repo.add(licenseFactory.makeDisjunctive(l));
  return repo;
}

/**
 * The purl string as the detectors wrote it (purl.ts encodes versions strictly, e.g. deb
 * epochs as `1%3A2.38.1`); the library only calls toString() on it when normalising.
 */
function purlOf(purl: string): NonNullable<Models.Component['purl']> {
  return { toString: () => purl } as unknown as NonNullable<Models.Component['purl']>;
}

/**
 * A CPE 2.3 formatted string as the schema admits it. Detectors build CPEs from raw names and
 * versions (`cpe:2.3:a:zlib:zlib:1.2.13+dfsg:…`); the binding requires every character other
 * than letters, digits, '-', '.' and '_' to be backslash-escaped, so raw values are escaped
 * here. Undefined when the string is not 13 colon-separated fields.
 */
export function formattedCpe(cpe: string): string | undefined {
  const isCpe = (s: string): boolean => Types.isCPE(s);
  if (isCpe(cpe)) return cpe;
  const parts = cpe.split(':');
  if (parts.length !== 13 || parts[0] !== 'cpe' || parts[1] !== '2.3') return undefined;
  const escaped = parts.map((v, i) => (i < 3 || v === '*' || v === '-' ? v : v.replace(/[^A-Za-z0-9\-._]/g, (c) => `\\${c}`))).join(':');
  return isCpe(escaped) ? escaped : undefined;
}

function properties(list: CdxProperty[]): Models.PropertyRepository {
  return new Models.PropertyRepository(list.map((p) => new Models.Property(p.name, p.value)));
}

function component(p: Package): Models.Component {
  const props: CdxProperty[] = [
    { name: 'stella:package:ecosystem', value: p.ecosystem },
    ...p.locations.map((l) => ({ name: 'stella:package:location', value: l })),
  ];
  if (p.arch) props.push({ name: 'stella:package:arch', value: p.arch });
  if (p.source) props.push({ name: 'stella:package:source-name', value: p.source.name }, { name: 'stella:package:source-version', value: p.source.version });
  if (p.dev) props.push({ name: 'stella:npm:dev', value: 'true' });
  if (p.layer) props.push({ name: 'stella:package:layer', value: p.layer });
  // CycloneDX has one cpe per component; further candidates go in properties.
  const cpes = (p.cpes ?? []).map(formattedCpe).filter((c): c is string => c !== undefined);
  for (const c of cpes.slice(1)) props.push({ name: 'stella:package:cpe', value: c });
  return new Models.Component(Enums.ComponentType.Library, p.name, {
    bomRef: p.purl,
    version: p.version,
    purl: purlOf(p.purl),
    ...(cpes.length ? { cpe: cpes[0] } : {}),
    licenses: cdxLicenses(p.licenses),
    properties: properties(props),
  });
}

const serializer = new Serialize.JsonSerializer(new Serialize.JSON.Normalize.Factory(Spec.Spec1dot6));

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

  const image = new Models.Component(Enums.ComponentType.Container, input.imageRef ?? input.artifactDigest, {
    bomRef: input.artifactDigest,
    version: input.artifactDigest,
    hashes: new Models.HashDictionary([[Enums.HashAlgorithm['SHA-256'], input.artifactDigest.replace(/^sha256:/, '')]]),
    properties: properties(imageProps),
  });
  const bom = new Models.Bom({
    version: 1,
    metadata: new Models.Metadata({
      timestamp,
      tools: new Models.Tools({
        components: new Models.ComponentRepository([new Models.Component(Enums.ComponentType.Application, tool.name, { version: tool.version })]),
      }),
      component: image,
    }),
  });

  const byPurl = new Map<string, Models.Component>();
  for (const p of input.packages) {
    if (byPurl.has(p.purl)) throw new Error(`duplicate bom-ref ${p.purl}`);
    const c = component(p);
    byPurl.set(p.purl, c);
    bom.components.add(c);
    image.dependencies.add(c.bomRef);
  }
  // Package → package edges the detectors know (dangling references are dropped).
  for (const p of input.packages) {
    const c = byPurl.get(p.purl)!;
    for (const d of p.dependsOn ?? []) {
      const dep = byPurl.get(d);
      if (dep && dep !== c) c.dependencies.add(dep.bomRef);
    }
  }
  if (input.distro) {
    const d = input.distro;
    const ref = `os:${d.id}${d.versionId ? `@${d.versionId}` : ''}`;
    if (byPurl.has(ref)) throw new Error(`duplicate bom-ref ${ref}`);
    const os = new Models.Component(Enums.ComponentType.OperatingSystem, d.id, {
      bomRef: ref,
      ...(d.versionId ? { version: d.versionId } : {}),
      ...(d.prettyName ? { description: d.prettyName } : {}),
      properties: properties([
        { name: 'stella:os:location', value: d.location },
        ...(d.versionCodename ? [{ name: 'stella:os:codename', value: d.versionCodename }] : []),
      ]),
    });
    bom.components.add(os);
    image.dependencies.add(os.bomRef);
  }

  const serialized = serializer.serialize(bom, { sortLists: true });
  const body = JSON.parse(serialized) as Omit<CycloneDxBom, 'serialNumber'>;
  // The library sorts by its own comparators; stella's order is by bom-ref, stable across versions of it.
  body.components = [...(body.components ?? [])].sort((a, b) => cmp(a['bom-ref'] ?? '', b['bom-ref'] ?? ''));
  body.components ??= [];
  // Derived from the library's sorted output (deterministic for one inventory and one pinned library
  // version, which SCANNER_VERSION covers), so the document is canonicalised once, when it is stored.
  const serialNumber = `urn:uuid:${uuidV5(`${input.artifactDigest}\n${sha256Hex(serialized)}`)}`;
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
    .union([
      z.array(z.object({ license: z.union([z.looseObject({ id: z.string() }), z.looseObject({ name: z.string() })]) })),
      z.tuple([z.looseObject({ expression: z.string() })]),
    ])
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
  dependencies: z.array(z.object({ ref: z.string().min(1), dependsOn: z.array(z.string().min(1)).optional() })).optional(),
});

/**
 * Quick structural check of the parts of CycloneDX 1.6 that stella produces (run on every
 * scan); the tests validate the same output against the official JSON schema as well.
 */
export function validateCycloneDx(bom: unknown): { valid: boolean; errors: string[] } {
  const r = BomSchema.safeParse(bom);
  const errors = r.success ? [] : r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  if (r.success) {
    const seen = new Set<string>([r.data.metadata.component['bom-ref'] ?? '']);
    for (const c of r.data.components) {
      const ref = c['bom-ref'];
      if (ref === undefined) continue;
      if (seen.has(ref)) errors.push(`components: duplicate bom-ref ${ref}`);
      seen.add(ref);
    }
    for (const d of r.data.dependencies ?? []) {
      for (const ref of [d.ref, ...(d.dependsOn ?? [])]) if (!seen.has(ref)) errors.push(`dependencies: unknown bom-ref ${ref}`);
    }
  }
  return { valid: errors.length === 0, errors };
}
