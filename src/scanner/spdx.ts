import { isSpdxExpression } from './detectors/licenses';
import { canonicalJson } from '../lib/canonical';
import { sha256Hex } from '../lib/hash';
import { formattedCpe, type SbomInput, uuidV5 } from './cyclonedx';
import type { Package } from './detectors/types';
import { SCANNER_NAME, SCANNER_VERSION } from './version';

/**
 * SPDX 2.3 JSON document for an image: the same inventory as the CycloneDX SBOM, as SPDX
 * packages (purl and CPE external references, SPDX licence expressions, non-SPDX licence
 * names as LicenseRef- entries with their text) and relationships (DOCUMENT DESCRIBES the
 * image, the image CONTAINS every package and the OS, package DEPENDS_ON package where the
 * detector knows it). Like the CycloneDX output it is a pure function of its input: sorted,
 * timestamp from the caller, namespace derived from the content.
 */

export interface SpdxExternalRef {
  referenceCategory: 'PACKAGE-MANAGER' | 'SECURITY' | 'PERSISTENT-ID' | 'OTHER';
  referenceType: string;
  referenceLocator: string;
}

export interface SpdxPackage {
  SPDXID: string;
  name: string;
  versionInfo?: string;
  downloadLocation: 'NOASSERTION';
  filesAnalyzed: false;
  licenseConcluded: 'NOASSERTION';
  licenseDeclared: string;
  copyrightText: 'NOASSERTION';
  primaryPackagePurpose?: 'CONTAINER' | 'OPERATING-SYSTEM' | 'LIBRARY' | 'APPLICATION';
  checksums?: Array<{ algorithm: 'SHA256'; checksumValue: string }>;
  externalRefs?: SpdxExternalRef[];
  sourceInfo?: string;
  comment?: string;
}

export interface SpdxDocument {
  spdxVersion: 'SPDX-2.3';
  dataLicense: 'CC0-1.0';
  SPDXID: 'SPDXRef-DOCUMENT';
  name: string;
  documentNamespace: string;
  creationInfo: { created: string; creators: string[] };
  packages: SpdxPackage[];
  relationships: Array<{ spdxElementId: string; relationshipType: 'DESCRIBES' | 'CONTAINS' | 'DEPENDS_ON'; relatedSpdxElement: string }>;
  hasExtractedLicensingInfos?: Array<{ licenseId: string; name: string; extractedText: string }>;
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** `SPDXRef-` + idstring ([A-Za-z0-9.-]+), unique per purl. */
function packageId(p: Package): string {
  const slug = `${p.ecosystem}-${p.name}`.replace(/[^A-Za-z0-9.-]+/g, '-').slice(0, 60);
  return `SPDXRef-Package-${slug}-${sha256Hex(p.purl).slice(0, 16)}`;
}

/** A LicenseRef- id for a licence name that is not SPDX (stable: derived from the name). */
function licenseRef(name: string): string {
  const slug = name
    .replace(/[^A-Za-z0-9.-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  return `LicenseRef-${slug || 'license'}-${sha256Hex(name).slice(0, 8)}`;
}

export function buildSpdx(input: SbomInput): SpdxDocument {
  const timestamp = new Date(input.timestamp);
  if (Number.isNaN(timestamp.getTime())) throw new Error(`invalid SBOM timestamp ${String(input.timestamp)}`);
  const tool = input.tool ?? { name: SCANNER_NAME, version: SCANNER_VERSION };
  const extracted = new Map<string, string>();

  const declared = (ls: readonly string[] | undefined): string => {
    const list = [...new Set(ls ?? [])].filter((l) => l.trim() !== '').sort(cmp);
    if (!list.length) return 'NOASSERTION';
    const terms = list.map((l) => {
      if (isSpdxExpression(l)) return /\s(AND|OR)\s/i.test(l) ? `(${l})` : l;
      const ref = licenseRef(l);
      extracted.set(ref, l);
      return ref;
    });
    return terms.join(' AND ');
  };

  const imageId = 'SPDXRef-Image';
  const image: SpdxPackage = {
    SPDXID: imageId,
    name: input.imageRef ?? input.artifactDigest,
    versionInfo: input.artifactDigest,
    downloadLocation: 'NOASSERTION',
    filesAnalyzed: false,
    licenseConcluded: 'NOASSERTION',
    licenseDeclared: 'NOASSERTION',
    copyrightText: 'NOASSERTION',
    primaryPackagePurpose: 'CONTAINER',
    checksums: [{ algorithm: 'SHA256', checksumValue: input.artifactDigest.replace(/^sha256:/, '') }],
  };
  const relationships: SpdxDocument['relationships'] = [{ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: imageId }];

  const ids = new Map<string, string>();
  const packages: SpdxPackage[] = [];
  for (const p of input.packages) {
    if (ids.has(p.purl)) throw new Error(`duplicate package ${p.purl}`);
    const id = packageId(p);
    ids.set(p.purl, id);
    const refs: SpdxExternalRef[] = [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: p.purl }];
    for (const c of p.cpes ?? []) {
      const f = formattedCpe(c);
      if (f) refs.push({ referenceCategory: 'SECURITY', referenceType: 'cpe23Type', referenceLocator: f });
    }
    packages.push({
      SPDXID: id,
      name: p.name,
      versionInfo: p.version,
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: declared(p.licenses),
      copyrightText: 'NOASSERTION',
      primaryPackagePurpose: 'LIBRARY',
      externalRefs: refs,
      ...(p.source ? { sourceInfo: `built from source package ${p.source.name} ${p.source.version}` } : {}),
      comment: `ecosystem ${p.ecosystem}; found at ${p.locations.join(', ')}${p.layer ? `; layer ${p.layer}` : ''}`,
    });
    relationships.push({ spdxElementId: imageId, relationshipType: 'CONTAINS', relatedSpdxElement: id });
  }
  for (const p of input.packages) {
    for (const d of p.dependsOn ?? []) {
      const to = ids.get(d);
      if (to && d !== p.purl) relationships.push({ spdxElementId: ids.get(p.purl)!, relationshipType: 'DEPENDS_ON', relatedSpdxElement: to });
    }
  }
  if (input.distro) {
    const d = input.distro;
    packages.push({
      SPDXID: 'SPDXRef-OperatingSystem',
      name: d.id,
      ...(d.versionId ? { versionInfo: d.versionId } : {}),
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: 'NOASSERTION',
      copyrightText: 'NOASSERTION',
      primaryPackagePurpose: 'OPERATING-SYSTEM',
      ...(d.prettyName ? { comment: d.prettyName } : {}),
    });
    relationships.push({ spdxElementId: imageId, relationshipType: 'CONTAINS', relatedSpdxElement: 'SPDXRef-OperatingSystem' });
  }

  packages.sort((a, b) => cmp(a.SPDXID, b.SPDXID));
  const relKey = (r: SpdxDocument['relationships'][number]) => `${r.spdxElementId} ${r.relationshipType} ${r.relatedSpdxElement}`;
  relationships.sort((a, b) => cmp(relKey(a), relKey(b)));
  const body: Omit<SpdxDocument, 'documentNamespace'> = {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: input.imageRef ?? input.artifactDigest,
    // SPDX dates have second precision.
    creationInfo: { created: timestamp.toISOString().replace(/\.\d{3}Z$/, 'Z'), creators: [`Tool: ${tool.name}-${tool.version}`] },
    packages: [image, ...packages],
    relationships,
    ...(extracted.size
      ? {
          hasExtractedLicensingInfos: [...extracted]
            .sort(([a], [b]) => cmp(a, b))
            .map(([licenseId, name]) => ({ licenseId, name, extractedText: `The licence named "${name}" in the package's metadata.` })),
        }
      : {}),
  };
  const documentNamespace = `urn:uuid:${uuidV5(`spdx\n${input.artifactDigest}\n${sha256Hex(canonicalJson(body))}`)}`;
  return { ...body, documentNamespace };
}

/** Canonical JSON bytes of an SPDX document: what gets hashed and stored. */
export function spdxBytes(doc: SpdxDocument): Buffer {
  return Buffer.from(canonicalJson(doc), 'utf8');
}

/** The SPDX document of a scan result (same image, packages, OS and scan time as its CycloneDX SBOM). */
export function spdxFromResult(r: {
  artifactDigest: string;
  imageRef: string | null;
  packages: readonly Package[];
  distro: SbomInput['distro'] | null;
  scannedAt: string;
}): SpdxDocument {
  return buildSpdx({
    artifactDigest: r.artifactDigest,
    ...(r.imageRef ? { imageRef: r.imageRef } : {}),
    packages: r.packages,
    ...(r.distro ? { distro: r.distro } : {}),
    timestamp: r.scannedAt,
  });
}
