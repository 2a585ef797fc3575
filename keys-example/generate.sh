#!/usr/bin/env bash
# Regenerates the EXAMPLE keys and certificates in this folder. EXAMPLES ONLY: these private keys
# are public, in git, and must never protect anything real.
#
#   root CA (SM2, self-signed) -> issuing CA (SM2, pathlen 0) -> one authority per algorithm:
#   authority-ed25519, authority-p256, authority-rsa2048, authority-sm2, and
#   authority-ed25519-next (the ed25519 authority's next key, for rotation and retirement)
#   seal-maker: the SM2 key that makes (signs) e-seals
#   tsa-p256: an example time-stamping authority (RFC 3161 tokens in v5 seals and signatures)
#   log-ed25519.key: the key that signs the signature log's checkpoints
#   token-ed25519.key: the node's key for presentation tokens (亮证) and annotated copies
#   identity-platform-ed25519.key / .pub.pem: an example unified identity platform that signs
#     holder tokens (JWTs); the node trusts the public key
#   trust-list-ed25519.key / .pub.pem: an example national scheme operator that signs trust
#     lists (互通互认); nodes that recognise other regions trust the public key
#
# test-only/ holds certificates made to fail: expired, not yet valid, wrong key usage, a CA
# certificate used as a leaf, and a leaf under an untrusted root.
#
# Needs OpenSSL 3 (SM2 and SM3). Run from anywhere: bash keys-example/generate.sh
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
SM2OPT=(-md sm3 -sigopt distid:1234567812345678)

cat > "$work/ca.cnf" <<CNF
[ ca ]
default_ca = example
[ example ]
dir = $work
database = $work/index.txt
serial = $work/serial
new_certs_dir = $work
policy = anything
unique_subject = no
copy_extensions = none
[ anything ]
countryName = optional
organizationName = optional
organizationalUnitName = optional
commonName = supplied
serialNumber = optional
[ root ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ issuing ]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ authority ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, nonRepudiation
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ tsa ]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ wrong_usage ]
basicConstraints = critical, CA:false
keyUsage = critical, keyEncipherment
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
: > "$work/index.txt"
echo 1000 > "$work/serial"

# sign NAME KEYFILE SUBJECT EXT ISSUER_CERT ISSUER_KEY START END OUT
sign() {
  local csr="$work/$1.csr"
  openssl req -new -key "$2" -subj "$3" -out "$csr" "${@:10}" 2>/dev/null
  local self=()
  [ "$5" = self ] && self=(-selfsign) || self=(-cert "$5")
  openssl ca -batch -config "$work/ca.cnf" -notext -extensions "$4" "${self[@]}" -keyfile "$6" \
    -startdate "$7" -enddate "$8" "${SM2OPT[@]}" -in "$csr" -out "$9" 2>/dev/null
}

genkey() {
  [ -f "$2" ] && [ -n "${KEEP_KEYS:-}" ] && return 0
  case "$1" in
    ed25519) openssl genpkey -algorithm ed25519 -out "$2" ;;
    p256) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$2" ;;
    rsa2048) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$2" ;;
    sm2) openssl genpkey -algorithm SM2 -out "$2" ;;
  esac
}

START=20250101000000Z
END=20450101000000Z
genkey sm2 root-ca.key
sign root root-ca.key "/C=CN/O=Zhengyin Example/CN=Zhengyin Example Root CA (EXAMPLE ONLY)" root self root-ca.key $START $END root-ca.pem
genkey sm2 issuing-ca.key
sign issuing issuing-ca.key "/C=CN/O=Zhengyin Example/CN=Zhengyin Example Issuing CA (EXAMPLE ONLY)" issuing root-ca.pem root-ca.key $START $END issuing-ca.pem

# USCCs of the example authorities (valid GB 32100 check characters).
declare -A USCC=([ed25519]=11220000013544541J [p256]=11100000000013338W [rsa2048]=91350100M000100Y43 [sm2]=12100000400010398P)
for alg in ed25519 p256 rsa2048 sm2; do
  genkey $alg authority-$alg.key
  sign authority-$alg authority-$alg.key "/C=CN/O=Example Authority $alg/serialNumber=${USCC[$alg]}/CN=Example Issuing Authority ($alg, EXAMPLE ONLY)" \
    authority issuing-ca.pem issuing-ca.key $START 20350101000000Z authority-$alg.pem
done

# A second key of the ed25519 authority (same USCC), for key rotation and retirement.
genkey ed25519 authority-ed25519-next.key
sign authority-ed25519-next authority-ed25519-next.key \
  "/C=CN/O=Example Authority ed25519/serialNumber=${USCC[ed25519]}/CN=Example Issuing Authority (ed25519, next key, EXAMPLE ONLY)" \
  authority issuing-ca.pem issuing-ca.key $START 20350101000000Z authority-ed25519-next.pem

# The seal maker (制章者): signs seals (GB/T 38540 SESeal), SM2.
genkey sm2 seal-maker.key
sign seal-maker seal-maker.key "/C=CN/O=Zhengyin Example Seal Maker/CN=Example Seal Maker (EXAMPLE ONLY)" \
  authority issuing-ca.pem issuing-ca.key $START 20350101000000Z seal-maker.pem

# A time-stamping authority (RFC 3161): a P-256 key (OpenSSL 3.0 cannot make SM2 tokens), extendedKeyUsage
# timeStamping (critical). Tests make tokens with `openssl ts -reply` (see tests/vectors/tsa/).
for alg in p256; do
  genkey $alg tsa-$alg.key
  sign tsa-$alg tsa-$alg.key "/C=CN/O=Zhengyin Example TSA/CN=Example Time-Stamping Authority ($alg, EXAMPLE ONLY)" \
    tsa issuing-ca.pem issuing-ca.key $START 20350101000000Z tsa-$alg.pem
done

# The signature log's checkpoint key (Ed25519, C2SP signed notes).
genkey ed25519 log-ed25519.key

# The node's token key (Ed25519): signs presentation tokens (亮证 QR codes) and annotated copies.
genkey ed25519 token-ed25519.key

# An example identity platform (统一身份认证平台): signs holder JWTs; nodes trust its public key.
genkey ed25519 identity-platform-ed25519.key
openssl pkey -in identity-platform-ed25519.key -pubout -out identity-platform-ed25519.pub.pem

# An example national scheme operator: signs trust lists; nodes trust its public key.
genkey ed25519 trust-list-ed25519.key
openssl pkey -in trust-list-ed25519.key -pubout -out trust-list-ed25519.pub.pem

mkdir -p test-only
genkey p256 test-only/leaf.key
sign expired test-only/leaf.key "/CN=Expired Authority" authority issuing-ca.pem issuing-ca.key 20200101000000Z 20210101000000Z test-only/expired.pem
sign future test-only/leaf.key "/CN=Future Authority" authority issuing-ca.pem issuing-ca.key 20990101000000Z 20991231000000Z test-only/not-yet-valid.pem
sign wrong test-only/leaf.key "/CN=Encryption-only Authority" wrong_usage issuing-ca.pem issuing-ca.key $START 20350101000000Z test-only/wrong-usage.pem
sign ca-leaf test-only/leaf.key "/CN=CA as Authority" issuing issuing-ca.pem issuing-ca.key $START 20350101000000Z test-only/ca-as-leaf.pem
genkey sm2 test-only/rogue-root.key
sign rogue test-only/rogue-root.key "/CN=Rogue Root" root self test-only/rogue-root.key $START $END test-only/rogue-root.pem
sign rogue-leaf test-only/leaf.key "/CN=Example Issuing Authority (p256, EXAMPLE ONLY)" authority test-only/rogue-root.pem test-only/rogue-root.key $START 20350101000000Z test-only/untrusted.pem
# A forged issuing CA: it names the real root as its issuer but is signed with the rogue key.
sign fake-root test-only/rogue-root.key "/C=CN/O=Zhengyin Example/CN=Zhengyin Example Root CA (EXAMPLE ONLY)" root self test-only/rogue-root.key $START $END "$work/fake-root.pem"
genkey sm2 test-only/forged-ca.key
sign forged test-only/forged-ca.key "/C=CN/O=Zhengyin Example/CN=Zhengyin Example Issuing CA (EXAMPLE ONLY)" issuing "$work/fake-root.pem" test-only/rogue-root.key $START $END test-only/forged-issuing-ca.pem
sign forged-leaf test-only/leaf.key "/CN=Forged Authority" authority test-only/forged-issuing-ca.pem test-only/forged-ca.key $START 20350101000000Z test-only/forged-leaf.pem
# A CRL of the issuing CA (SM2): the ed25519 authority revoked for key compromise, the p256
# authority as superseded. Used only by tests that load it.
mkdir -p "$work/crl" && : > "$work/crl/index.txt" && echo 1000 > "$work/crl/crlnumber"
cat > "$work/crl/ca.cnf" <<CNF
[ ca ]
default_ca = CA_default
[ CA_default ]
database = $work/crl/index.txt
crlnumber = $work/crl/crlnumber
default_md = sm3
default_crl_days = 3650
crl_extensions = crl_ext
[ crl_ext ]
authorityKeyIdentifier = keyid:always
CNF
openssl ca -config "$work/crl/ca.cnf" -keyfile issuing-ca.key -cert issuing-ca.pem -revoke authority-ed25519.pem -crl_reason keyCompromise
openssl ca -config "$work/crl/ca.cnf" -keyfile issuing-ca.key -cert issuing-ca.pem -revoke authority-p256.pem -crl_reason superseded
openssl ca -config "$work/crl/ca.cnf" -keyfile issuing-ca.key -cert issuing-ca.pem -gencrl -sigopt distid:1234567812345678 -out test-only/issuing-ca-revocations.crl.pem
# A later CRL of the same CA that also revokes the SM2 authority (key compromise): for seals.
sleep 1
openssl ca -config "$work/crl/ca.cnf" -keyfile issuing-ca.key -cert issuing-ca.pem -revoke authority-sm2.pem -crl_reason keyCompromise
openssl ca -config "$work/crl/ca.cnf" -keyfile issuing-ca.key -cert issuing-ca.pem -gencrl -sigopt distid:1234567812345678 -out test-only/issuing-ca-revocations-later.crl.pem
echo "regenerated example keys in $(pwd)"
