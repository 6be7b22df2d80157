/**
 * RFC 3161 time-stamp requests and token verification. ASN.1 is parsed with @peculiar/asn1-tsp
 * (pinned); the checks are the ones `openssl ts -verify` makes: the imprint is SHA-256 of the
 * data, the CMS signature covers the TSTInfo through its signed attributes, and the signing
 * certificate is issued by the trusted TSA CA and allowed to time-stamp.
 */
import crypto, { X509Certificate } from 'node:crypto';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { ContentInfo, SignedData } from '@peculiar/asn1-cms';
import { AlgorithmIdentifier } from '@peculiar/asn1-x509';
import { MessageImprint, TimeStampReq, TimeStampResp, TSTInfo, id_ct_tstInfo } from '@peculiar/asn1-tsp';

const OID_SHA256 = '2.16.840.1.101.3.4.2.1';
const OID_MESSAGE_DIGEST = '1.2.840.113549.1.9.4';
const OID_SIGNED_DATA = '1.2.840.113549.1.7.2';
const EKU_TIME_STAMPING = '1.3.6.1.5.5.7.3.8';
const DIGESTS: Record<string, string> = {
  [OID_SHA256]: 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

/** A DER TimeStampReq for SHA-256(data), asking for the TSA certificate in the token. */
export function timestampRequest(data: Uint8Array, nonce: Buffer = crypto.randomBytes(8)): { der: Buffer; nonce: Buffer } {
  const req = new TimeStampReq({
    messageImprint: new MessageImprint({
      hashAlgorithm: new AlgorithmIdentifier({ algorithm: OID_SHA256 }),
      hashedMessage: new OctetString(crypto.createHash('sha256').update(data).digest()),
    }),
    // A positive INTEGER: clear the top bit so DER needs no sign byte.
    nonce: Uint8Array.from([nonce[0]! & 0x7f, ...nonce.subarray(1)]).buffer,
    certReq: true,
  });
  return { der: Buffer.from(AsnConvert.serialize(req)), nonce: Buffer.from(new Uint8Array(req.nonce!)) };
}

/** The TimeStampToken (DER ContentInfo) from a TimeStampResp, or why the TSA refused. */
export function tokenFromResponse(resp: Uint8Array): { token: Buffer } | { problem: string } {
  let r: TimeStampResp;
  try {
    r = AsnConvert.parse(Buffer.from(resp), TimeStampResp);
  } catch (e) {
    return { problem: `not a TimeStampResp: ${(e as Error).message}` };
  }
  if (r.status.status > 1)
    return { problem: `TSA refused the request (PKIStatus ${r.status.status}${r.status.statusString ? `: ${r.status.statusString.join(' ')}` : ''})` };
  if (!r.timeStampToken) return { problem: 'TSA granted the request but sent no token' };
  return { token: Buffer.from(AsnConvert.serialize(r.timeStampToken)) };
}

export interface TokenCheck {
  ok: boolean;
  problem?: string;
  genTime?: string;
  serial?: string;
  tsaSubject?: string;
}

function trimInt(b: ArrayBuffer): Buffer {
  let x = Buffer.from(new Uint8Array(b));
  while (x.length > 1 && x[0] === 0) x = x.subarray(1);
  return x;
}

/** Check a token over `data` against the trusted TSA CA certificate (PEM); `nonce` when checking a fresh response. */
export function verifyTimestampToken(token: Uint8Array, data: Uint8Array, caPem: string | undefined, nonce?: Buffer): TokenCheck {
  const no = (problem: string): TokenCheck => ({ ok: false, problem });
  let sd: SignedData;
  let tst: TSTInfo;
  let eContent: Buffer;
  try {
    const ci = AsnConvert.parse(Buffer.from(token), ContentInfo);
    if (ci.contentType !== OID_SIGNED_DATA) return no(`token content type ${ci.contentType} is not SignedData`);
    sd = AsnConvert.parse(ci.content, SignedData);
    if (sd.encapContentInfo.eContentType !== id_ct_tstInfo) return no('token does not encapsulate a TSTInfo');
    const single = sd.encapContentInfo.eContent?.single;
    if (!single) return no('token has no TSTInfo content');
    eContent = Buffer.from(single.buffer);
    tst = AsnConvert.parse(eContent, TSTInfo);
  } catch (e) {
    return no(`token does not parse: ${(e as Error).message}`);
  }
  const out = { genTime: tst.genTime.toISOString(), serial: trimInt(tst.serialNumber).toString('hex') };
  if (tst.messageImprint.hashAlgorithm.algorithm !== OID_SHA256) return no('token imprint is not SHA-256');
  const want = crypto.createHash('sha256').update(data).digest();
  if (!want.equals(Buffer.from(tst.messageImprint.hashedMessage.buffer))) return no('token imprint is not SHA-256 of the timestamped bytes');
  if (nonce && (!tst.nonce || !trimInt(tst.nonce).equals(trimInt(Uint8Array.from(nonce).buffer)))) return no('token nonce differs from the request');
  const si = sd.signerInfos[0];
  if (!si || sd.signerInfos.length !== 1) return no('token must carry exactly one signer');
  const hash = DIGESTS[si.digestAlgorithm.algorithm];
  if (!hash) return no(`unsupported digest ${si.digestAlgorithm.algorithm}`);
  const md = si.signedAttrs?.find((a) => a.attrType === OID_MESSAGE_DIGEST)?.attrValues[0];
  if (!si.signedAttrs || !md) return no('token signer has no signed attributes with a message digest');
  const mdValue = Buffer.from(AsnConvert.parse(md, OctetString).buffer);
  if (!mdValue.equals(crypto.createHash(hash).update(eContent).digest())) return no('signed message digest does not match the TSTInfo');
  const certDer = sd.certificates?.find((c) => c.certificate)?.certificate;
  if (!certDer) return no('token carries no TSA certificate (request with certReq)');
  const cert = new X509Certificate(Buffer.from(AsnConvert.serialize(certDer)));
  // The signature is over the DER SET OF the signed attributes, in the order the token carries
  // them (DER order when the TSA encoded them correctly; attribute values are kept verbatim).
  const signed = derSet(si.signedAttrs.map((a) => Buffer.from(AsnConvert.serialize(a))));
  const sigOk = crypto.verify(hash, signed, cert.publicKey, Buffer.from(si.signature.buffer));
  if (!sigOk) return no(`token signature by ${cert.subject.replace(/\n/g, ', ')} does not verify`);
  if (!caPem) return no('no TSA CA certificate configured (STELLA_TSA_CA_FILE): the token cannot be trusted');
  let ca: X509Certificate;
  try {
    ca = new X509Certificate(caPem);
  } catch (e) {
    return no(`TSA CA certificate does not parse: ${(e as Error).message}`);
  }
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey))
    return no(`TSA certificate ${cert.subject.replace(/\n/g, ', ')} is not issued by the trusted TSA CA`);
  if (!cert.keyUsage?.includes(EKU_TIME_STAMPING)) return no('TSA certificate is not allowed to time-stamp (extended key usage timeStamping)');
  const t = Date.parse(out.genTime);
  if (t < Date.parse(cert.validFrom) || t > Date.parse(cert.validTo)) return no('token time is outside the TSA certificate validity');
  return { ok: true, ...out, tsaSubject: cert.subject.replace(/\n/g, ', ') };
}

function derSet(items: Buffer[]): Buffer {
  const body = Buffer.concat(items);
  const n = body.length;
  const len =
    n < 0x80
      ? Buffer.from([n])
      : (() => {
          const bytes: number[] = [];
          for (let x = n; x > 0; x = Math.floor(x / 256)) bytes.unshift(x % 256);
          return Buffer.from([0x80 | bytes.length, ...bytes]);
        })();
  return Buffer.concat([Buffer.from([0x31]), len, body]);
}
