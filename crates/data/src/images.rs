//! Image access with the safety checks untrusted data needs: paths must stay
//! under the dataset root, and the pixel count is checked from the header
//! before any pixel buffer is allocated (decompression bombs).

use std::io::Cursor;
use std::path::{Component, Path, PathBuf};

use image::{DynamicImage, ImageReader};

use crate::sample::ImageRef;

/// How much of each image [`check`] inspects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImageCheck {
    /// Trust the manifest (embedding-only work).
    None,
    /// Files exist and headers give dimensions within the pixel limit.
    #[default]
    Header,
    /// Additionally decode every image fully.
    Decode,
}

/// Resolves a manifest path under `root`, refusing absolute paths, `..`
/// components and symlinks that lead outside the root.
pub fn resolve_under_root(root: &Path, raw: &str) -> Result<PathBuf, String> {
    let rel = Path::new(raw);
    if rel.is_absolute() {
        return Err(format!("path {raw:?} is absolute; image paths must be relative to the dataset root"));
    }
    if rel.components().any(|c| matches!(c, Component::ParentDir | Component::Prefix(_) | Component::RootDir)) {
        return Err(format!("path {raw:?} escapes the dataset root {}", root.display()));
    }
    let joined = root.join(rel);
    // A symlink inside the root may still point outside it.
    if let (Ok(real), Ok(real_root)) = (joined.canonicalize(), root.canonicalize())
        && !real.starts_with(&real_root)
    {
        return Err(format!("path {raw:?} resolves to {} outside the dataset root {}", real.display(), real_root.display()));
    }
    Ok(joined)
}

/// A readable, seekable byte source (a file or an in-memory buffer).
trait Source: std::io::BufRead + std::io::Seek {}
impl<T: std::io::BufRead + std::io::Seek> Source for T {}

fn reader(image: &ImageRef) -> Result<ImageReader<Box<dyn Source + '_>>, String> {
    let inner: Box<dyn Source + '_> = match image {
        ImageRef::Path(p) => {
            let f = std::fs::File::open(p).map_err(|e| format!("cannot open {}: {e}", p.display()))?;
            Box::new(std::io::BufReader::new(f))
        }
        ImageRef::Bytes { bytes, .. } => Box::new(Cursor::new(bytes.as_ref())),
    };
    ImageReader::new(inner).with_guessed_format().map_err(|e| format!("cannot read {}: {e}", image.describe()))
}

/// Width and height from the header, refusing images above `max_pixels`.
pub fn dimensions(image: &ImageRef, max_pixels: u64) -> Result<(u32, u32), String> {
    let (w, h) = reader(image)?.into_dimensions().map_err(|e| format!("not a decodable image ({}): {e}", image.describe()))?;
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(format!("image is {w}x{h} = {} pixels, over the limit of {max_pixels} ({})", u64::from(w) * u64::from(h), image.describe()));
    }
    Ok((w, h))
}

/// Whether JPEG data ends: an end-of-image marker after the first scan.
/// The decoder fills the rows of a truncated JPEG with grey and reports no
/// error, so truncation is checked here, as Pillow's "image file is
/// truncated" does. In entropy-coded data a 0xFF byte is always followed by
/// 0x00 or a restart marker, so 0xFF 0xD9 after a start-of-scan is the end.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let Some(sos) = bytes.windows(2).position(|w| w == [0xFF, 0xDA]) else { return false };
    bytes[sos..].windows(2).any(|w| w == [0xFF, 0xD9])
}

fn read_all(image: &ImageRef) -> Result<std::borrow::Cow<'_, [u8]>, String> {
    match image {
        ImageRef::Path(p) => std::fs::read(p).map(std::borrow::Cow::Owned).map_err(|e| format!("cannot read {}: {e}", p.display())),
        ImageRef::Bytes { bytes, .. } => Ok(std::borrow::Cow::Borrowed(bytes.as_ref())),
    }
}

/// Decodes an image after the pixel-limit check; truncated JPEG data is an
/// error, not an image with grey rows.
pub fn decode(image: &ImageRef, max_pixels: u64) -> Result<DynamicImage, String> {
    dimensions(image, max_pixels)?;
    let bytes = read_all(image)?;
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) && !jpeg_is_complete(&bytes) {
        return Err(format!("not a decodable image ({}): JPEG data is truncated (no end-of-image marker after the scan)", image.describe()));
    }
    let mut r = ImageReader::new(Cursor::new(bytes.as_ref())).with_guessed_format().map_err(|e| format!("cannot read {}: {e}", image.describe()))?;
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(max_pixels.saturating_mul(16));
    r.limits(limits);
    r.decode().map_err(|e| format!("not a decodable image ({}): {e}", image.describe()))
}

/// Runs the requested level of checks on one image.
pub fn check(image: &ImageRef, level: ImageCheck, max_pixels: u64) -> Result<(), String> {
    match level {
        ImageCheck::None => Ok(()),
        ImageCheck::Header => dimensions(image, max_pixels).map(|_| ()),
        ImageCheck::Decode => decode(image, max_pixels).map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncated_jpegs_are_refused() {
        let img = image::RgbImage::from_fn(256, 192, |x, y| image::Rgb([((x * 7) ^ (y * 3)) as u8, (x * y) as u8, 128]));
        let mut jpeg = Vec::new();
        image::DynamicImage::ImageRgb8(img).write_to(&mut Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).unwrap();
        let whole = ImageRef::Bytes { bytes: jpeg.clone().into(), name: Some("whole.jpg".into()) };
        assert_eq!(decode(&whole, 1 << 20).unwrap().width(), 256);
        let cut = ImageRef::Bytes { bytes: jpeg[..jpeg.len() / 3].to_vec().into(), name: Some("cut.jpg".into()) };
        let e = decode(&cut, 1 << 20).unwrap_err();
        assert!(e.contains("cut.jpg") && e.contains("truncated"), "{e}");
    }

    #[test]
    fn parent_and_absolute_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(resolve_under_root(dir.path(), "../x.png").unwrap_err().contains("escapes"));
        assert!(resolve_under_root(dir.path(), "a/../../x.png").unwrap_err().contains("escapes"));
        assert!(resolve_under_root(dir.path(), "/etc/passwd").unwrap_err().contains("absolute"));
        assert_eq!(resolve_under_root(dir.path(), "a/b.png").unwrap(), dir.path().join("a/b.png"));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_leading_outside_the_root_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.png"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret.png"), root.path().join("link.png")).unwrap();
        let e = resolve_under_root(root.path(), "link.png").unwrap_err();
        assert!(e.contains("outside the dataset root"), "{e}");
    }
}
