//! HMAC-signed JSON Web Tokens (HS256/HS384/HS512), compact serialisation only.
//!
//! Only the symmetric algorithms the contract allows are implemented, so `alg: none` and
//! algorithm-confusion attacks (an RSA public key used as an HMAC secret) have nothing to hit: a
//! token is accepted only when its header names exactly the configured algorithm and its MAC,
//! compared in constant time, matches. The MACs come from the RustCrypto `hmac`/`sha2` crates
//! (already in the tree through sqlx); this module only does the JWS framing.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Tolerated clock skew when checking `exp`/`nbf`.
pub const LEEWAY_SECONDS: i64 = 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::upper_case_acronyms)]
pub enum Algorithm {
    HS256,
    HS384,
    HS512,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
        }
    }
}

impl FromStr for Algorithm {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "HS256" => Ok(Algorithm::HS256),
            "HS384" => Ok(Algorithm::HS384),
            "HS512" => Ok(Algorithm::HS512),
            other => Err(format!(
                "unsupported algorithm `{other}` (supported: HS256, HS384, HS512)"
            )),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Platform operator: creates and lists tenants, may act inside any tenant.
    Admin,
    /// Bound to one tenant (`tenant_id`).
    Tenant,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Uuid>,
    pub iat: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    Malformed,
    WrongAlgorithm,
    BadSignature,
    Expired,
    NotYetValid,
    InvalidClaims,
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JwtError::Malformed => "malformed token",
            JwtError::WrongAlgorithm => "token algorithm not accepted",
            JwtError::BadSignature => "token signature invalid",
            JwtError::Expired => "token expired",
            JwtError::NotYetValid => "token not yet valid",
            JwtError::InvalidClaims => "token claims invalid",
        })
    }
}

impl std::error::Error for JwtError {}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
    /// Critical extensions we would have to understand; we understand none.
    #[serde(default, skip_serializing)]
    crit: Option<serde_json::Value>,
}

/// Signing and verification key plus algorithm.
#[derive(Clone)]
pub struct JwtKeys {
    algorithm: Algorithm,
    secret: Vec<u8>,
}

impl fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKeys")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    pub fn new(algorithm: Algorithm, secret: impl Into<Vec<u8>>) -> Self {
        Self {
            algorithm,
            secret: secret.into(),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    fn mac(&self, message: &[u8]) -> Vec<u8> {
        match self.algorithm {
            Algorithm::HS256 => mac_with::<Hmac<sha2::Sha256>>(&self.secret, message),
            Algorithm::HS384 => mac_with::<Hmac<sha2::Sha384>>(&self.secret, message),
            Algorithm::HS512 => mac_with::<Hmac<sha2::Sha512>>(&self.secret, message),
        }
    }

    fn verify_mac(&self, message: &[u8], signature: &[u8]) -> bool {
        match self.algorithm {
            Algorithm::HS256 => verify_with::<Hmac<sha2::Sha256>>(&self.secret, message, signature),
            Algorithm::HS384 => verify_with::<Hmac<sha2::Sha384>>(&self.secret, message, signature),
            Algorithm::HS512 => verify_with::<Hmac<sha2::Sha512>>(&self.secret, message, signature),
        }
    }

    pub fn encode(&self, claims: &Claims) -> String {
        let header = Header {
            alg: self.algorithm.as_str().into(),
            typ: Some("JWT".into()),
            crit: None,
        };
        let header =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).expect("header serialises"));
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialise"));
        let signing_input = format!("{header}.{payload}");
        let signature = URL_SAFE_NO_PAD.encode(self.mac(signing_input.as_bytes()));
        format!("{signing_input}.{signature}")
    }

    /// Verifies the signature first, then the claims, against `now` (Unix seconds).
    pub fn decode(&self, token: &str, now: i64) -> Result<Claims, JwtError> {
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let header: Header = URL_SAFE_NO_PAD
            .decode(header_b64)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(JwtError::Malformed)?;
        if header.alg != self.algorithm.as_str() || header.crit.is_some() {
            return Err(JwtError::WrongAlgorithm);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| JwtError::BadSignature)?;
        let signing_input_len = header_b64.len() + 1 + payload_b64.len();
        if !self.verify_mac(&token.as_bytes()[..signing_input_len], &signature) {
            return Err(JwtError::BadSignature);
        }
        let claims: Claims = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(JwtError::InvalidClaims)?;
        if claims.exp + LEEWAY_SECONDS <= now {
            return Err(JwtError::Expired);
        }
        if claims.nbf.is_some_and(|nbf| nbf - LEEWAY_SECONDS > now) {
            return Err(JwtError::NotYetValid);
        }
        match (claims.role, claims.tenant_id) {
            (Role::Tenant, None) => Err(JwtError::InvalidClaims),
            _ => Ok(claims),
        }
    }
}

fn mac_with<M: Mac + KeyInit>(secret: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = <M as KeyInit>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn verify_with<M: Mac + KeyInit>(secret: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let mut mac = <M as KeyInit>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(message);
    // `verify_slice` compares in constant time.
    mac.verify_slice(signature).is_ok()
}

/// Claims for a token minted now that lives `minutes`.
pub fn claims_for(
    sub: impl Into<String>,
    role: Role,
    tenant_id: Option<Uuid>,
    now: i64,
    minutes: i64,
) -> Claims {
    Claims {
        sub: sub.into(),
        role,
        tenant_id,
        iat: now,
        exp: now + minutes * 60,
        nbf: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn keys() -> JwtKeys {
        JwtKeys::new(
            Algorithm::HS256,
            b"0123456789abcdef0123456789abcdef".to_vec(),
        )
    }

    #[test]
    fn round_trip() {
        let claims = claims_for("t", Role::Tenant, Some(Uuid::nil()), NOW, 60);
        let token = keys().encode(&claims);
        assert_eq!(keys().decode(&token, NOW + 10).unwrap(), claims);
    }

    #[test]
    fn matches_a_known_hs256_vector() {
        // Verifiable with any JWT library: header {"alg":"HS256","typ":"JWT"}.
        let claims = Claims {
            sub: "admin".into(),
            role: Role::Admin,
            tenant_id: None,
            iat: 0,
            exp: 1,
            nbf: None,
        };
        let token = JwtKeys::new(Algorithm::HS256, b"secret".to_vec()).encode(&claims);
        assert!(token.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."));
        // HMAC-SHA256("secret", input) computed independently with Python hmac.
        let input = token.rsplit_once('.').unwrap().0;
        assert_eq!(
            input,
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhZG1pbiIsInJvbGUiOiJhZG1pbiIsImlhdCI6MCwiZXhwIjoxfQ"
        );
        assert_eq!(
            token.rsplit_once('.').unwrap().1,
            "EKcjotsXm45j8VcI2tvzUKhCtDlc_4Sdhe4bb5Zdpd4"
        );
    }

    #[test]
    fn rejects_expired_tampered_none_and_other_keys() {
        let claims = claims_for("t", Role::Tenant, Some(Uuid::nil()), NOW, 1);
        let token = keys().encode(&claims);
        assert_eq!(
            keys().decode(&token, NOW + 60 + LEEWAY_SECONDS),
            Err(JwtError::Expired)
        );

        let (input, _) = token.rsplit_once('.').unwrap();
        let (header, _) = input.split_once('.').unwrap();
        let forged_payload =
            URL_SAFE_NO_PAD.encode(br#"{"sub":"x","role":"admin","iat":0,"exp":9999999999}"#);
        let tampered = format!(
            "{header}.{forged_payload}.{}",
            token.rsplit_once('.').unwrap().1
        );
        assert_eq!(keys().decode(&tampered, NOW), Err(JwtError::BadSignature));

        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert_eq!(
            keys().decode(&format!("{none_header}.{forged_payload}."), NOW),
            Err(JwtError::WrongAlgorithm)
        );

        let other = JwtKeys::new(
            Algorithm::HS256,
            b"another-key-another-key-another-key".to_vec(),
        );
        assert_eq!(other.decode(&token, NOW), Err(JwtError::BadSignature));
        let hs512 = JwtKeys::new(
            Algorithm::HS512,
            b"0123456789abcdef0123456789abcdef".to_vec(),
        );
        assert_eq!(hs512.decode(&token, NOW), Err(JwtError::WrongAlgorithm));

        for junk in ["", "a.b", "a.b.c.d", "!!.??.##"] {
            assert!(keys().decode(junk, NOW).is_err(), "{junk}");
        }
    }

    #[test]
    fn tenant_role_requires_tenant_id() {
        let token = keys().encode(&claims_for("t", Role::Tenant, None, NOW, 5));
        assert_eq!(keys().decode(&token, NOW), Err(JwtError::InvalidClaims));
    }
}
