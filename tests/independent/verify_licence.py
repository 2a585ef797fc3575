"""An independent licence verifier, written from api-spec/licence-format.md and the W3C
Data Integrity cryptosuites (eddsa-jcs-2022, ecdsa-jcs-2019) with other people's code only:
JCS from `rfc8785`, signatures from `cryptography` and, for SM2/SM3, `gmssl`.

    verify_licence.py LICENCE.json CERTIFICATE.pem

Checks that the proof's verificationMethod names the certificate (SHA-256 of its DER), then the
signature over hashData with the certificate's public key. Prints VALID and exits 0, or prints
INVALID and the reason and exits 1. It checks the signature only: no chain, status or dates.
"""

import hashlib
import json
import sys

import rfc8785
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from gmssl import func, sm2, sm3

BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def base58btc(text):
    number = 0
    for char in text:
        number = number * 58 + BASE58.index(char)
    body = number.to_bytes((number.bit_length() + 7) // 8, "big")
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + body


def sm3_hash(data):
    return bytes.fromhex(sm3.sm3_hash(func.bytes_to_list(data)))


def main(licence_path, certificate_path):
    licence = json.load(open(licence_path, encoding="utf-8"))
    certificate = x509.load_pem_x509_certificate(open(certificate_path, "rb").read())
    fingerprint = hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()

    proof = licence.pop("proof")
    value = proof.pop("proofValue")
    if "@context" in licence:
        proof["@context"] = licence["@context"]
    if proof["verificationMethod"] != "urn:zhengyin:cert:sha256:" + fingerprint:
        return "the proof names another certificate"
    if not value.startswith("z"):
        return "proofValue is not base58-btc multibase"
    signature = base58btc(value[1:])
    suite = proof["cryptosuite"]
    digest = sm3_hash if suite == "sm2-jcs-2026" else (lambda b: hashlib.sha256(b).digest())
    hash_data = digest(rfc8785.dumps(proof)) + digest(rfc8785.dumps(licence))

    try:
        if suite == "sm2-jcs-2026":
            # `cryptography` reads no SM2 keys: the point follows the SM2 curve's OID and the
            # BIT STRING header in the certificate's SubjectPublicKeyInfo.
            der = certificate.public_bytes(serialization.Encoding.DER)
            marker = bytes.fromhex("06082a811ccf5501822d034200" + "04")
            at = der.find(marker)
            if at < 0:
                return "the certificate holds no SM2 key"
            point = der[at + len(marker) : at + len(marker) + 64]
            verifier = sm2.CryptSM2(private_key="", public_key="")
            verifier.public_key = point.hex()  # x‖y, set directly: the constructor mangles a leading 04
            if len(signature) != 64 or not verifier.verify_with_sm3(signature.hex(), hash_data):
                raise InvalidSignature()
            return None
        key = certificate.public_key()
        if suite == "eddsa-jcs-2022":
            key.verify(signature, hash_data)
        elif suite == "ecdsa-jcs-2019":
            r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
            key.verify(encode_dss_signature(r, s), hash_data, ec.ECDSA(hashes.SHA256()))
        elif suite == "rsa-jcs-2026":
            key.verify(signature, hash_data, padding.PKCS1v15(), hashes.SHA256())
        else:
            return "unknown cryptosuite " + suite
    except InvalidSignature:
        return "the signature does not verify"
    return None


if __name__ == "__main__":
    why = main(sys.argv[1], sys.argv[2])
    if why:
        print("INVALID:", why)
        sys.exit(1)
    print("VALID")
