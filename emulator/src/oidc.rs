//! OIDC bearer tokens on DICOMweb (`--oidc-jwks FILE`).
//!
//! A datastore created with `lambdaAuthorizerArn` accepts `Authorization:
//! Bearer <JWT>` on its DICOMweb routes. The service checks the token's
//! `exp`, `nbf` and `iat` claims (`iat` within 12 hours) and asks the
//! Lambda authorizer for a role; there is no Lambda here, so the emulator
//! accepts tokens signed (RS256 or ES256) by a key of the JSON Web Key Set
//! given with `--oidc-jwks`, and checks the same claims against the
//! machine's clock. A refusal is an `AccessDeniedException` saying why.

use base64::Engine;
use ring::signature;
use serde_json::Value as Json;

/// A JSON Web Key Set's usable keys.
#[derive(Debug, Clone, Default)]
pub struct Jwks {
    keys: Vec<Key>,
}

#[derive(Debug, Clone)]
struct Key {
    kid: Option<String>,
    kind: KeyKind,
}

#[derive(Debug, Clone)]
enum KeyKind {
    /// RS256: modulus and exponent, big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// ES256: the uncompressed P-256 point.
    P256 { point: Vec<u8> },
}

fn b64url(text: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .ok()
}

/// How long after `iat` a token is accepted (the service's 12 hours).
const MAX_AGE_SECONDS: i64 = 12 * 3600;
/// How far token times may be ahead of the clock.
const LEEWAY_SECONDS: i64 = 60;

impl Jwks {
    /// Parses a JWKS document; keys of other types are skipped, and a set
    /// without a usable key is an error.
    pub fn parse(text: &str) -> Result<Self, String> {
        let document: Json = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let listed = document["keys"]
            .as_array()
            .ok_or("no \"keys\" array (a JSON Web Key Set is {\"keys\": [...]})")?;
        let mut keys = Vec::new();
        for key in listed {
            let field = |name: &str| key[name].as_str().and_then(b64url);
            let kid = key["kid"].as_str().map(str::to_owned);
            let kind = match (key["kty"].as_str(), key["crv"].as_str()) {
                (Some("RSA"), _) => match (field("n"), field("e")) {
                    (Some(n), Some(e)) => KeyKind::Rsa { n, e },
                    _ => return Err("an RSA key needs n and e".into()),
                },
                (Some("EC"), Some("P-256")) => match (field("x"), field("y")) {
                    (Some(x), Some(y)) if x.len() == 32 && y.len() == 32 => {
                        let mut point = vec![4u8];
                        point.extend(x);
                        point.extend(y);
                        KeyKind::P256 { point }
                    }
                    _ => return Err("a P-256 key needs 32-byte x and y".into()),
                },
                _ => continue,
            };
            keys.push(Key { kid, kind });
        }
        if keys.is_empty() {
            return Err("no RSA or P-256 key in the set".into());
        }
        Ok(Self { keys })
    }

    /// Checks `token` at `now` (epoch seconds): its signature by one of the
    /// keys, then `exp`, `nbf` and `iat`. `Err` says why it is refused.
    pub fn check(&self, token: &str, now: i64) -> Result<(), String> {
        let parts: Vec<&str> = token.split('.').collect();
        let [header, payload, signature] = parts.as_slice() else {
            return Err("the bearer token is not a JWT (three dot-separated parts)".into());
        };
        let decode_json = |part: &str, what: &str| -> Result<Json, String> {
            b64url(part)
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .ok_or_else(|| format!("the token's {what} is not base64url JSON"))
        };
        let header_json = decode_json(header, "header")?;
        let claims = decode_json(payload, "payload")?;
        let signature = b64url(signature).ok_or("the token's signature is not base64url")?;
        let signed = format!("{header}.{payload}");
        let alg = header_json["alg"].as_str().unwrap_or_default();
        let kid = header_json["kid"].as_str();
        let verified = self
            .keys
            .iter()
            .filter(|key| kid.is_none() || key.kid.as_deref() == kid)
            .any(|key| match (&key.kind, alg) {
                (KeyKind::Rsa { n, e }, "RS256") => signature::RsaPublicKeyComponents { n, e }
                    .verify(
                        &signature::RSA_PKCS1_2048_8192_SHA256,
                        signed.as_bytes(),
                        &signature,
                    )
                    .is_ok(),
                (KeyKind::P256 { point }, "ES256") => {
                    signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                        .verify(signed.as_bytes(), &signature)
                        .is_ok()
                }
                _ => false,
            });
        if !verified {
            return Err(format!(
                "the token's signature ({alg}) is not by a key of the configured JWKS"
            ));
        }
        let time = |name: &str| claims[name].as_i64();
        match time("exp") {
            None => return Err("the token has no exp claim".into()),
            Some(exp) if exp <= now => return Err("the token has expired (exp)".into()),
            Some(_) => {}
        }
        if time("nbf").is_some_and(|nbf| nbf > now + LEEWAY_SECONDS) {
            return Err("the token is not valid yet (nbf)".into());
        }
        match time("iat") {
            None => Err("the token has no iat claim".into()),
            Some(iat) if iat > now + LEEWAY_SECONDS => {
                Err("the token was issued in the future (iat)".into())
            }
            Some(iat) if now - iat > MAX_AGE_SECONDS => {
                Err("the token was issued more than 12 hours ago (iat)".into())
            }
            Some(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

    /// A JWKS and an RS256 token signed by OpenSSL (an independent signer)
    /// for 2026-12-03T12:00:00Z: iat and nbf a minute before, exp an hour after.
    const RSA_JWKS: &str = r#"{"keys": [{"kty": "RSA", "kid": "test-rsa", "alg": "RS256", "n": "1LaZPsFhd1sAjeDbbYssZuu6P7hbf33K4V0K31uhJZXPuiZnq8eKCMLHiJNzjVcB3RVmlc4BcSz9UVB0soUv2Onk_8zj8z6c6LgPdJB1bvO9awWyAbh2KPsz1Psj_pJOpII7kpRUkgxxuwqJxn4tVd3IbOnBt5uTGMP_CQV44e5EBN3eiRC6kXQIV1rVDCs3IHQBNPBcH5AapqZyvWaaxuP2koJzPHP2XYgT9AsGeoRkVBXTSpDCWtCKZHTn-MaawS-ScZIMRq5ss1CdacATpeTUOzdhT_kulSR-i16m9Kzsb5CS9XJ9ZLbxxSZn9QwQ49rwF1dyMQNgpNK_UC0vyw", "e": "AQAB"}]}"#;
    const RSA_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6InRlc3QtcnNhIn0.eyJzdWIiOiJjbGluaWNpYW4tMSIsImlhdCI6MTc5NjI5OTE0MCwibmJmIjoxNzk2Mjk5MTQwLCJleHAiOjE3OTYzMDI4MDAsImF1ZCI6Im1lZGljYWwtaW1hZ2luZyJ9.iWxNyFF56GmPR8tAjVOzT8icSOmLdIc29mhwj4dtYNwOP3E5Dmr6_R4GdGHyYTcdQtIVgl_U_2goqThKYqxMaJFtlZGlSNyVUoBfvcMrHzJWCfspRJLg5pfM4FqBSBnCqJGjhsR2MaSw6SSrpte13qiRlpjHRCWUP3JPPJi3oU_V6Eu8DKEj14pripIMkibksD4VxVzgSPZwQBTnjR8Om9SdyiRDvyeDMCKUg6CdQFLOzTc-QylyDc2bpr5Yiv8_Xqi2p1cEHtIeoQKt9WAbhz4vxe0Dz5mc8CVlC94dVUdsvzL7ZPVF_06MaKAQHZLScfYZ3oM3EhFBrHuhJRB90w";
    const NOW: i64 = 1_796_299_200;

    #[test]
    fn an_rs256_token_is_checked_against_its_key_and_its_times() {
        let jwks = Jwks::parse(RSA_JWKS).unwrap();
        assert_eq!(jwks.check(RSA_TOKEN, NOW), Ok(()));
        assert!(
            jwks.check(RSA_TOKEN, NOW + 3600)
                .unwrap_err()
                .contains("expired")
        );
        assert!(
            jwks.check(RSA_TOKEN, NOW - 3600)
                .unwrap_err()
                .contains("nbf")
        );
        let mut tampered = RSA_TOKEN.to_owned();
        tampered.replace_range(40..41, if &RSA_TOKEN[40..41] == "A" { "B" } else { "A" });
        assert!(jwks.check(&tampered, NOW).is_err());
        assert!(jwks.check("not.a-token", NOW).is_err());
    }

    fn es256_token(pair: &EcdsaKeyPair, claims: &Json) -> String {
        let encode = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let header = encode(br#"{"alg":"ES256","typ":"JWT","kid":"ec"}"#);
        let payload = encode(claims.to_string().as_bytes());
        let signed = format!("{header}.{payload}");
        let signature = pair.sign(&SystemRandom::new(), signed.as_bytes()).unwrap();
        format!("{signed}.{}", encode(signature.as_ref()))
    }

    #[test]
    fn an_es256_token_and_every_time_claim() {
        let random = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &random).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &random)
                .unwrap();
        let point = pair.public_key().as_ref();
        let encode = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let jwks = Jwks::parse(
            &serde_json::json!({"keys": [
                {"kty": "oct", "k": "c2VjcmV0"},
                {"kty": "EC", "crv": "P-256", "kid": "ec", "x": encode(&point[1..33]), "y": encode(&point[33..])}
            ]})
            .to_string(),
        )
        .unwrap();
        let ok = serde_json::json!({"iat": NOW - 10, "exp": NOW + 600});
        assert_eq!(jwks.check(&es256_token(&pair, &ok), NOW), Ok(()));
        let old = serde_json::json!({"iat": NOW - 13 * 3600, "exp": NOW + 600});
        assert!(
            jwks.check(&es256_token(&pair, &old), NOW)
                .unwrap_err()
                .contains("12 hours")
        );
        let no_iat = serde_json::json!({"exp": NOW + 600});
        assert!(
            jwks.check(&es256_token(&pair, &no_iat), NOW)
                .unwrap_err()
                .contains("iat")
        );
        let no_exp = serde_json::json!({"iat": NOW});
        assert!(
            jwks.check(&es256_token(&pair, &no_exp), NOW)
                .unwrap_err()
                .contains("exp")
        );
        let future = serde_json::json!({"iat": NOW + 3600, "exp": NOW + 7200});
        assert!(
            jwks.check(&es256_token(&pair, &future), NOW)
                .unwrap_err()
                .contains("future")
        );
        // The RSA set does not vouch for this key's tokens.
        let rsa = Jwks::parse(RSA_JWKS).unwrap();
        assert!(rsa.check(&es256_token(&pair, &ok), NOW).is_err());
        assert!(Jwks::parse(r#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#).is_err());
        assert!(Jwks::parse("[]").is_err());
    }
}
