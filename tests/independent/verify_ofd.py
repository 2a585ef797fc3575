"""An independent checker of sealed OFD documents, written from GB/T 33190 (the OFD package) and
GB/T 38540 (v4 SES_Signature and SESeal) with other people's code only for the cryptography:
SM3 and SM2 from `gmssl`; the zip from Python's standard library; DER read here, by hand.

    verify_ofd.py FILE.ofd

For every seal signature (`Type="Seal"`) in every document's signature list it checks:
  file             every file the signature's Signature.xml lists, with the SM3 CheckValue
                   (the list the signature is in may only have grown by later signatures),
  data_hash        the SES_Signature's dataHash is SM3 of the bytes of Signature.xml,
  signer_signature the SM2 signature over TBS_Sign with the signer certificate's key,
  maker_signature  the SM2 signature over SES_SealInfo with the seal maker certificate's key.
Prints VALID and exits 0, or INVALID and each failed step with what it concerns and exits 1. It
checks no certificate chain, date or status: that is the node's verifier's work.
"""

import base64
import posixpath
import sys
import xml.etree.ElementTree as ET
import zipfile

from gmssl import func, sm2, sm3

SM2_KEY = bytes.fromhex("06082a811ccf5501822d")  # the SM2 curve's OID in a SubjectPublicKeyInfo


def sm3_hash(data):
    return bytes.fromhex(sm3.sm3_hash(func.bytes_to_list(data)))


def tlv(data, at):
    """The DER element whose header starts at `at`: (tag, contents start, end)."""
    tag = data[at]
    length = data[at + 1]
    start = at + 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    return tag, start, start + length


def element(data, at=0):
    """An element as the helpers below take it: (tag, header start, end)."""
    tag, _, end = tlv(data, at)
    return tag, at, end


def children(data, parent):
    """The elements inside a constructed element."""
    _, at, end = tlv(data, parent[1])
    out = []
    while at < end:
        child = element(data, at)
        out.append(child)
        at = child[2]
    return out


def whole(data, e):
    """An element's bytes, header included."""
    return data[e[1] : e[2]]


def contents(data, e):
    _, start, end = tlv(data, e[1])
    return data[start:end]


def sm2_point(certificate):
    at = certificate.find(SM2_KEY + b"\x03\x42\x00\x04")
    if at < 0:
        raise ValueError("the certificate holds no SM2 key")
    at += len(SM2_KEY) + 4
    return certificate[at : at + 64]


def sm2_verifies(certificate, signature_bits, message):
    """An SM2 signature (BIT STRING contents: DER SEQUENCE {r, s}, or r‖s) over `message` with
    the default identity, by `gmssl`."""
    signature = signature_bits[1:]  # the unused-bits octet
    if len(signature) != 64:
        r, s = children(signature, element(signature))
        to_int = lambda e: int.from_bytes(contents(signature, e), "big")
        signature = to_int(r).to_bytes(32, "big") + to_int(s).to_bytes(32, "big")
    verifier = sm2.CryptSM2(private_key="", public_key="")
    verifier.public_key = sm2_point(certificate).hex()
    return verifier.verify_with_sm3(signature.hex(), message)


def text_of(root, name):
    for element in root.iter():
        if element.tag.split("}")[-1] == name:
            yield element


def resolve(base, reference):
    path = reference.strip()
    path = path.lstrip("/") if path.startswith("/") else posixpath.join(base, path)
    return posixpath.normpath(path)


def check_signature(package, list_path, later, path):
    failures = []
    signature_xml = package.read(path)
    base = posixpath.dirname(path)
    root = ET.fromstring(signature_xml)
    for reference in text_of(root, "Reference"):
        file = resolve(base, reference.get("FileRef", ""))
        expected = base64.b64decode(next(text_of(reference, "CheckValue")).text.strip())
        if file not in package.namelist():
            failures.append(f"file: {file} is missing")
        elif sm3_hash(package.read(file)) != expected:
            if not (file == list_path and later > 0):
                failures.append(f"file: {file} changed")
    signed_value = resolve(base, next(text_of(root, "SignedValue")).text)
    der = package.read(signed_value)

    # SES_Signature ::= SEQUENCE { toSign TBS_Sign, cert OCTET STRING, signatureAlgID OID,
    #                              signature BIT STRING, timeStamp [0] OPTIONAL }
    signature = children(der, element(der))
    to_sign, cert, _, value = signature[:4]
    # TBS_Sign ::= SEQUENCE { version INTEGER, eseal SESeal, timeInfo GeneralizedTime,
    #                         dataHash BIT STRING, propertyInfo IA5String, extDatas OPTIONAL }
    tbs = children(der, to_sign)
    data_hash = contents(der, tbs[3])[1:]
    if data_hash != sm3_hash(signature_xml):
        failures.append("data_hash: not SM3 of Signature.xml")
    if not sm2_verifies(contents(der, cert), contents(der, value), whole(der, to_sign)):
        failures.append("signer_signature: does not verify")

    # SESeal ::= SEQUENCE { esealInfo SES_SealInfo, cert OCTET STRING, signAlgID OID,
    #                       signedValue BIT STRING }
    seal = children(der, tbs[1])
    info, maker, _, maker_value = seal[:4]
    if not sm2_verifies(contents(der, maker), contents(der, maker_value), whole(der, info)):
        failures.append("maker_signature: does not verify")
    return failures


def main(ofd_path):
    package = zipfile.ZipFile(ofd_path)
    ofd = ET.fromstring(package.read("OFD.xml"))
    failures = []
    seals = 0
    for list_element in text_of(ofd, "Signatures"):
        list_path = resolve("", list_element.text)
        signatures = ET.fromstring(package.read(list_path))
        entries = [e for e in text_of(signatures, "Signature")]
        for n, entry in enumerate(entries):
            if entry.get("Type", "Seal") != "Seal":
                continue
            seals += 1
            path = resolve(posixpath.dirname(list_path), entry.get("BaseLoc"))
            later = len(entries) - n - 1
            failures += [f"{path}: {f}" for f in check_signature(package, list_path, later, path)]
    if seals == 0:
        failures.append("the document carries no seal")
    return failures


if __name__ == "__main__":
    try:
        failed = main(sys.argv[1])
    except (KeyError, ValueError, IndexError, ET.ParseError, zipfile.BadZipFile) as e:
        failed = [f"unreadable: {e}"]
    if failed:
        print("INVALID:", "; ".join(failed))
        sys.exit(1)
    print("VALID")
