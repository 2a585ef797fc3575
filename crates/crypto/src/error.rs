/// Errors of the crypto layer. Signature failures are deliberately opaque.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// The signature does not verify (or does not fit the key or scheme).
    #[error("signature error")]
    BadSignature,
    /// A key is not well-formed DER of a supported kind.
    #[error("malformed key")]
    MalformedKey,
    /// A well-formed key or algorithm the service does not accept.
    #[error("unsupported: {0}")]
    UnsupportedAlgorithm(String),
    /// PEM text could not be decoded.
    #[error("PEM: {0}")]
    Pem(String),
    /// A key file could not be read.
    #[error("reading key: {0}")]
    Io(String),
    /// The signing operation itself failed.
    #[error("signing failed")]
    SigningFailed,
    /// The device that holds the key cannot sign now (removed, sessions lost, not logged in);
    /// it may again later, so callers answer "retry" rather than "broken".
    #[error("signing device unavailable: {0}")]
    Unavailable(String),
    /// A signed token (compact JWS) is not well-formed.
    #[error("malformed token: {0}")]
    MalformedToken(String),
    /// Input to a builder (a subject name, say) that it cannot use.
    #[error("{0}")]
    InvalidInput(String),
    /// A certificate could not be parsed.
    #[error("malformed certificate: {0}")]
    MalformedCertificate(String),
}
