//! How a journal turns the user's records into bytes and back.

#[cfg(feature = "postcard")]
use std::{fmt, marker::PhantomData};

/// A codec's own error, which the journal wraps with the record's index.
pub type CodecError = Box<dyn std::error::Error + Send + Sync>;

/// Turns the user's records into bytes and back, so a journal stores the user's own type.
///
/// A journal must be reopened with a codec that reads what it wrote; bytes it refuses are
/// [`Error::BadRecord`](crate::Error::BadRecord), never skipped.
///
/// ```
/// use raftwal::journal::{Codec, CodecError};
///
/// /// Account moves as `account:amount`.
/// struct Moves;
///
/// impl Codec for Moves {
///     type Input = (String, i64);
///     type Record = (String, i64);
///
///     fn encode(&self, (account, amount): &(String, i64), out: &mut Vec<u8>) -> Result<(), CodecError> {
///         out.extend_from_slice(format!("{account}:{amount}").as_bytes());
///         Ok(())
///     }
///
///     fn decode(&self, bytes: &[u8]) -> Result<(String, i64), CodecError> {
///         let text = std::str::from_utf8(bytes)?;
///         let (account, amount) = text.split_once(':').ok_or("no ':'")?;
///         Ok((account.to_string(), amount.parse()?))
///     }
/// }
/// ```
pub trait Codec: Send + Sync + 'static {
    /// What `append` takes: the record, or a borrowed form of it (`[u8]` for [`Bytes`]).
    type Input: ?Sized;
    /// What replay gives back.
    type Record;

    /// Appends the bytes of `record` to `out`.
    fn encode(&self, record: &Self::Input, out: &mut Vec<u8>) -> Result<(), CodecError>;

    /// Reads a record back from the bytes `encode` wrote.
    fn decode(&self, bytes: &[u8]) -> Result<Self::Record, CodecError>;
}

/// The default codec: records are byte strings, stored as they are.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bytes;

impl Codec for Bytes {
    type Input = [u8];
    type Record = Vec<u8>;

    fn encode(&self, record: &[u8], out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.extend_from_slice(record);
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> Result<Vec<u8>, CodecError> {
        Ok(bytes.to_vec())
    }
}

/// Any serde type, stored in [postcard](https://docs.rs/postcard)'s compact, stable binary
/// format (varint integers, no field names). Feature `postcard`.
///
/// Postcard is not self-describing: change a record type only in ways that keep old records
/// readable (append enum variants at the end; add new record types as new variants).
#[cfg(feature = "postcard")]
pub struct Postcard<T>(PhantomData<fn() -> T>);

#[cfg(feature = "postcard")]
impl<T> Postcard<T> {
    /// The codec for records of type `T`.
    pub fn new() -> Postcard<T> {
        Postcard(PhantomData)
    }
}

#[cfg(feature = "postcard")]
impl<T> Default for Postcard<T> {
    fn default() -> Postcard<T> {
        Postcard::new()
    }
}

#[cfg(feature = "postcard")]
impl<T> fmt::Debug for Postcard<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Postcard<{}>", std::any::type_name::<T>())
    }
}

#[cfg(feature = "postcard")]
impl<T> Codec for Postcard<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    type Input = T;
    type Record = T;

    fn encode(&self, record: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let taken = std::mem::take(out);
        *out = postcard::to_extend(record, taken)?;
        Ok(())
    }

    fn decode(&self, bytes: &[u8]) -> Result<T, CodecError> {
        // Bytes left over mean the record is not a `T` (another type, or another codec's
        // bytes that happened to parse): refused, not read as something it is not.
        let (record, rest) = postcard::take_from_bytes(bytes)?;
        if !rest.is_empty() {
            return Err(format!("{} bytes left after the record", rest.len()).into());
        }
        Ok(record)
    }
}
