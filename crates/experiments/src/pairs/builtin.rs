//! The synthetic benchmark's editor: it draws the image again from its
//! parameters in `images-truth.json`, with the dark cross added or removed,
//! so an edit changes exactly the harmful feature. It returns the cross as
//! its mask.

use std::path::Path;

use pairguard_data::Direction;
use pairguard_data::synthetic::ImagesTruth;

use super::editor::{EditError, EditRequest, Edited, Editor};
use crate::error::Result;

#[derive(Debug)]
pub struct SyntheticEditor {
    truth: ImagesTruth,
}

impl SyntheticEditor {
    pub fn new(truth: &Path) -> Result<Self> {
        Ok(SyntheticEditor { truth: ImagesTruth::from_file(truth)? })
    }
}

impl Editor for SyntheticEditor {
    fn describe(&self) -> String {
        "synthetic (draws or erases the dark cross)".into()
    }

    fn edit(&self, r: &EditRequest) -> std::result::Result<Edited, EditError> {
        let t =
            self.truth.images.get(&r.id).ok_or_else(|| EditError::fatal("unknown image", format!("{} is not a synthetic benchmark image", r.id)))?;
        let harmful = r.direction == Direction::Add;
        if t.harmful == harmful {
            let has = if t.harmful { "already has" } else { "has no" };
            return Err(EditError::fatal("nothing to edit", format!("{} {has} the cross to {}", r.id, r.direction.name())));
        }
        let mut png = std::io::Cursor::new(Vec::new());
        self.truth.render(t, harmful).write_to(&mut png, image::ImageFormat::Png).map_err(|e| EditError::fatal("encode", e.to_string()))?;
        Ok(Edited { image: png.into_inner(), mask: Some(ImagesTruth::feature_mask()), cost: None })
    }
}
