//! `kiln face`: detect, embed and verify faces in photos with the int8
//! YuNet and SFace models, through kiln-face (the same code a board runs).

mod bench;
mod draw;
mod models;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use kiln_face::{
    align, cosine, ChannelOrder, DetectOptions, Detector, Embedder, Face, ImageView, KilnYunet, CROP, SFACE_SAME_PERSON,
};
use kiln_runtime::{Model, Session};

use crate::run::open_model;

pub use models::ModelArgs;

/// What `kiln face` does.
#[derive(Subcommand)]
pub enum FaceCommand {
    /// Find the faces in photos and print their boxes, landmarks and scores.
    Detect {
        /// The photos (PNG or JPEG).
        #[arg(required = true)]
        photos: Vec<PathBuf>,
        /// Also write the photo with boxes and landmarks drawn (PNG or
        /// JPEG); one photo only.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Also write each face's aligned 112 × 112 crop (what SFace embeds)
        /// into this folder as PHOTO_NN.png: e.g. a calibration set for
        /// `kiln convert --calib`.
        #[arg(long, value_name = "DIR")]
        crops: Option<PathBuf>,
        #[command(flatten)]
        options: FaceArgs,
    },
    /// Print the embedding of the one face in a photo.
    Embed {
        /// The photo: it must show exactly one face.
        photo: PathBuf,
        #[command(flatten)]
        options: FaceArgs,
    },
    /// Say whether two photos, one face each, show the same person.
    Verify {
        /// The first photo.
        a: PathBuf,
        /// The second photo.
        b: PathBuf,
        #[command(flatten)]
        options: FaceArgs,
    },
    /// Time detection and the whole pipeline on a photo, kiln int8 against
    /// tract fp32 on the same ONNX models, on one thread.
    Bench {
        /// The photo (PNG or JPEG).
        photo: PathBuf,
        /// Timed runs per contender.
        #[arg(long, default_value_t = 10)]
        runs: usize,
        /// Untimed runs per contender first.
        #[arg(long, default_value_t = 1)]
        warmup: usize,
        #[command(flatten)]
        options: FaceArgs,
    },
}

/// Models and thresholds shared by the face commands.
#[derive(Args, Clone, Debug)]
pub struct FaceArgs {
    #[command(flatten)]
    models: ModelArgs,
    /// Smallest detector score (0..1) that counts as a face.
    #[arg(long, default_value_t = DetectOptions::default().score_threshold, allow_negative_numbers = true)]
    score_threshold: f32,
    /// At most this many faces per photo, the best (each costs a detector run).
    #[arg(long, default_value_t = DetectOptions::default().max_faces)]
    max_faces: usize,
}

impl FaceArgs {
    fn detect_options(&self) -> Result<DetectOptions> {
        let options = DetectOptions {
            score_threshold: self.score_threshold,
            max_faces: self.max_faces,
            ..DetectOptions::default()
        };
        options.check().context("--score-threshold, --max-faces")?;
        Ok(options)
    }
}

/// Runs one `kiln face` command.
pub fn run(command: &FaceCommand) -> Result<()> {
    match command {
        FaceCommand::Detect { photos, output, crops, options } => {
            if output.is_some() && photos.len() > 1 {
                bail!("--output draws on one photo, but {} were given: give one photo, or drop --output", photos.len());
            }
            if let Some(out) = output {
                crate::output::ensure_not_an_input(out, photos.iter().map(PathBuf::as_path))?;
            }
            detect(photos, output.as_deref(), crops.as_deref(), options)
        }
        FaceCommand::Embed { photo, options } => {
            let embedding = Pipeline::embed_one(options, photo)?;
            let values: Vec<String> = embedding.iter().map(|v| format!("{v:.6}")).collect();
            println!("[{}]", values.join(", "));
            Ok(())
        }
        FaceCommand::Verify { a, b, options } => verify(a, b, options),
        FaceCommand::Bench { photo, runs, warmup, options } => bench::run(photo, *runs, *warmup, options),
    }
}

fn detect(photos: &[PathBuf], output: Option<&Path>, crops: Option<&Path>, args: &FaceArgs) -> Result<()> {
    let detector = open_model(&args.models.detector()?)?;
    let mut detector = Detector::new(Session::new(&detector)?)?;
    let options = args.detect_options()?;
    for photo in photos {
        detect_one(&mut detector, photo, output, crops, &options)?;
    }
    Ok(())
}

fn detect_one(
    detector: &mut Detector<KilnYunet<'_>>,
    photo: &Path,
    output: Option<&Path>,
    crops: Option<&Path>,
    options: &DetectOptions,
) -> Result<()> {
    let mut img = read_photo(photo)?;
    let faces = detector.detect(&view(&img), options)?;
    println!("{}: {} face{}", photo.display(), faces.len(), if faces.len() == 1 { "" } else { "s" });
    for (i, f) in faces.iter().enumerate() {
        let marks: Vec<String> = f.landmarks.iter().map(|[x, y]| format!("({x:.1}, {y:.1})")).collect();
        println!(
            "  face {i}: score {:.3}, box x {:.1} y {:.1} w {:.1} h {:.1}, landmarks {}",
            f.score,
            f.x,
            f.y,
            f.width,
            f.height,
            marks.join(" ")
        );
    }
    if let Some(dir) = crops {
        write_crops(photo, &view(&img), faces, dir)?;
    }
    if let Some(out) = output {
        draw::annotate(&mut img, faces);
        save_image(&img, out)?;
        println!("wrote {}", out.display());
    }
    Ok(())
}

/// Writes the aligned crop of each of `faces` in `photo` to `dir`.
fn write_crops(photo: &Path, image: &ImageView<'_>, faces: &[Face], dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the folder {}", dir.display()))?;
    let stem = photo.file_stem().map_or("face".into(), |s| s.to_string_lossy());
    let mut crop = [0u8; CROP * CROP * 3];
    for (i, face) in faces.iter().enumerate() {
        let path = dir.join(format!("{stem}_{i:02}.png"));
        if align(image, &face.landmarks, &mut crop).is_none() {
            println!("  face {i}: landmarks coincide, no crop written");
            continue;
        }
        crate::output::ensure_not_an_input(&path, [photo])?;
        let crop = image::RgbImage::from_raw(CROP as u32, CROP as u32, crop.to_vec())
            .context("a crop has CROP × CROP RGB pixels")?;
        save_image(&crop, &path)?;
    }
    println!("wrote {} crop{} to {}", faces.len(), if faces.len() == 1 { "" } else { "s" }, dir.display());
    Ok(())
}

/// Encodes `img` in the format `path`'s extension names and writes it
/// atomically.
fn save_image(img: &image::RgbImage, path: &Path) -> Result<()> {
    let format = image::ImageFormat::from_path(path)
        .with_context(|| format!("{}: name it .png or .jpg, so that kiln knows how to encode it", path.display()))?;
    let mut encoded = std::io::Cursor::new(Vec::new());
    img.write_to(&mut encoded, format).with_context(|| format!("cannot encode {}", path.display()))?;
    crate::output::write(path, encoded.get_ref())
}

fn verify(a: &Path, b: &Path, args: &FaceArgs) -> Result<()> {
    let detector = open_model(&args.models.detector()?)?;
    let embedder = open_model(&args.models.embedder()?)?;
    let mut pipeline = Pipeline::new(&detector, &embedder)?;
    let options = args.detect_options()?;
    let ea = pipeline.embed_photo(a, &options)?;
    let eb = pipeline.embed_photo(b, &options)?;
    let similarity = cosine(&ea, &eb);
    let verdict = if similarity >= SFACE_SAME_PERSON { "same" } else { "different" };
    println!("{verdict}: cosine similarity {similarity:.4} (same person at >= {SFACE_SAME_PERSON})");
    Ok(())
}

/// Detector and embedder sessions, made once for several photos.
struct Pipeline<'m> {
    detector: Detector<KilnYunet<'m>>,
    embedder: Embedder<'m>,
}

impl<'m> Pipeline<'m> {
    fn new(detector: &'m Model<'m>, embedder: &'m Model<'m>) -> Result<Self> {
        Ok(Pipeline {
            detector: Detector::new(Session::new(detector)?)?,
            embedder: Embedder::new(Session::new(embedder)?)?,
        })
    }

    fn embed_one(args: &FaceArgs, photo: &Path) -> Result<Vec<f32>> {
        let detector = open_model(&args.models.detector()?)?;
        let embedder = open_model(&args.models.embedder()?)?;
        Pipeline::new(&detector, &embedder)?.embed_photo(photo, &args.detect_options()?)
    }

    /// The embedding of the one face in `photo`.
    fn embed_photo(&mut self, photo: &Path, options: &DetectOptions) -> Result<Vec<f32>> {
        let img = read_photo(photo)?;
        let view = view(&img);
        let face = one_face(photo, self.detector.detect(&view, options)?, options)?;
        let mut crop = [0u8; CROP * CROP * 3];
        align(&view, &face.landmarks, &mut crop)
            .with_context(|| format!("{}: the face's landmarks coincide; it cannot be aligned", photo.display()))?;
        let mut embedding = vec![0.0; self.embedder.dims()];
        self.embedder.embed(&crop, &mut embedding)?;
        Ok(embedding)
    }
}

/// The only face of `faces`, or an error that says what was found.
fn one_face(photo: &Path, faces: &[Face], options: &DetectOptions) -> Result<Face> {
    match faces {
        [face] => Ok(*face),
        [] => bail!(
            "no face found in {} (no detection scored {} or more): use a photo where a face is visible, \
             or lower --score-threshold",
            photo.display(),
            options.score_threshold
        ),
        many => {
            let scores: Vec<String> = many.iter().map(|f| format!("{:.2}", f.score)).collect();
            bail!(
                "{} shows {} faces (scores {}), this command needs exactly one: crop the photo to one face \
                 (`kiln face detect` lists them)",
                photo.display(),
                many.len(),
                scores.join(", ")
            )
        }
    }
}

fn read_photo(path: &Path) -> Result<image::RgbImage> {
    kiln_converter::input::regular_file(path, "photo")?;
    let img = kiln_converter::input::decode_image(path)
        .with_context(|| format!("cannot read {} as an image: give a PNG or JPEG photo", path.display()))?;
    Ok(img.to_rgb8())
}

fn view(img: &image::RgbImage) -> ImageView<'_> {
    ImageView::new(img.width() as usize, img.height() as usize, ChannelOrder::Rgb, img.as_raw())
        .expect("an RgbImage holds width * height * 3 bytes")
}
