//! The CUDA side of a stage: the device decoders and filters share, the `scale_cuda`
//! graph that resizes decoded frames without leaving the GPU (and downloads them only
//! for a software encoder), and the plain download when no graph can be built.

use ff::ffi;
use ffmpeg_next as ff;
use std::ptr;

/// A CUDA device context (FFmpeg's `AVHWDeviceContext`), shared by reference.
pub struct CudaDevice(*mut ffi::AVBufferRef);

// SAFETY: an AVBufferRef to a hardware device is reference counted atomically and the
// device context itself is safe to use from any thread FFmpeg runs codecs on.
unsafe impl Send for CudaDevice {}

impl CudaDevice {
    /// Opens the first CUDA device; the error says why (no driver, no GPU).
    pub fn open() -> Result<CudaDevice, String> {
        let mut dev = ptr::null_mut();
        // SAFETY: av_hwdevice_ctx_create writes a new reference into `dev` on success
        // and leaves it null on failure.
        let r = unsafe {
            ffi::av_hwdevice_ctx_create(
                &mut dev,
                ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_CUDA,
                ptr::null(),
                ptr::null_mut(),
                0,
            )
        };
        match r {
            0 if !dev.is_null() => Ok(CudaDevice(dev)),
            e => Err(ff::Error::from(e).to_string()),
        }
    }

    /// A new reference, for a codec context to own.
    pub fn new_ref(&self) -> *mut ffi::AVBufferRef {
        // SAFETY: self.0 is a valid reference for as long as self lives.
        unsafe { ffi::av_buffer_ref(self.0) }
    }
}

impl Drop for CudaDevice {
    fn drop(&mut self) {
        // SAFETY: self.0 is the reference this value owns.
        unsafe { ffi::av_buffer_unref(&mut self.0) }
    }
}

/// Builds and runs a tiny `scale_cuda` graph so the driver compiles FFmpeg's CUDA
/// kernels (or loads them from its cache) before the first stream needs them: on a
/// fresh machine that takes seconds, during which a stage would drop its input.
/// Returns how long it took; an error when there is no CUDA device.
pub fn warm_up() -> Result<std::time::Duration, String> {
    let start = std::time::Instant::now();
    ff::init().map_err(|e| e.to_string())?;
    let device = CudaDevice::open()?;
    let mut frame = ff::frame::Video::empty();
    // SAFETY: a frames context is made on the device, initialised, and one frame
    // taken from it; the frame holds its own reference, so ours is released.
    unsafe {
        let mut frames = ffi::av_hwframe_ctx_alloc(device.0);
        if frames.is_null() {
            return Err("out of memory".into());
        }
        let ctx = (*frames).data as *mut ffi::AVHWFramesContext;
        (*ctx).format = ffi::AVPixelFormat::AV_PIX_FMT_CUDA;
        (*ctx).sw_format = ffi::AVPixelFormat::AV_PIX_FMT_NV12;
        (*ctx).width = 64;
        (*ctx).height = 64;
        let mut r = ffi::av_hwframe_ctx_init(frames);
        if r >= 0 {
            r = ffi::av_hwframe_get_buffer(frames, frame.as_mut_ptr(), 0);
        }
        ffi::av_buffer_unref(&mut frames);
        if r < 0 {
            return Err(format!("a CUDA frame: {}", ff::Error::from(r)));
        }
    }
    let mut scaler = GpuScaler::new(&frame, (32, 32), true)?;
    scaler.run(&frame)?;
    Ok(start.elapsed())
}

/// Whether `frame` lives on the GPU (decoded by NVDEC into CUDA memory).
pub fn on_gpu(frame: &ff::frame::Video) -> bool {
    // SAFETY: reading the format field of a valid frame.
    unsafe { (*frame.as_ptr()).format == ffi::AVPixelFormat::AV_PIX_FMT_CUDA as i32 }
}

/// Copies a GPU frame into system memory (NV12 for 8-bit 4:2:0), timestamps included.
pub fn download(frame: &ff::frame::Video, into: &mut ff::frame::Video) -> Result<(), String> {
    // SAFETY: both frames are valid; av_hwframe_transfer_data allocates `into`'s
    // buffers in the frames context's software format.
    unsafe {
        ffi::av_frame_unref(into.as_mut_ptr());
        let r = ffi::av_hwframe_transfer_data(into.as_mut_ptr(), frame.as_ptr(), 0);
        if r < 0 {
            return Err(format!(
                "downloading a frame from the GPU: {}",
                ff::Error::from(r)
            ));
        }
        ffi::av_frame_copy_props(into.as_mut_ptr(), frame.as_ptr());
    }
    Ok(())
}

/// `scale_cuda` to the output size: frames stay in CUDA memory for NVENC, or come out
/// in system memory as YUV 4:2:0 (`hwdownload`) for a software encoder.
pub struct GpuScaler {
    graph: ff::filter::Graph,
    out: ff::frame::Video,
}

// SAFETY: the graph is only ever used from the one thread that owns the stage.
unsafe impl Send for GpuScaler {}

impl GpuScaler {
    /// A graph for frames like `first` (on the GPU), resizing to `w`×`h`.
    pub fn new(
        first: &ff::frame::Video,
        (w, h): (u32, u32),
        download: bool,
    ) -> Result<GpuScaler, String> {
        let mut graph = ff::filter::Graph::new();
        let find = |n: &str| ff::filter::find(n).ok_or(format!("no {n} filter in this FFmpeg"));
        let args = format!(
            "video_size={}x{}:pix_fmt=cuda:time_base=1/90000:pixel_aspect=1/1",
            first.width(),
            first.height()
        );
        let err = |what: &str, e: ff::Error| format!("{what}: {e}");
        let mut src = graph
            .add(&find("buffer")?, "in", &args)
            .map_err(|e| err("buffer", e))?;
        // SAFETY: the source is a buffer filter not yet configured; the parameters
        // take a new reference to the decoder's frames context.
        unsafe {
            let par = ffi::av_buffersrc_parameters_alloc();
            if par.is_null() {
                return Err("out of memory".into());
            }
            (*par).format = ffi::AVPixelFormat::AV_PIX_FMT_CUDA as i32;
            (*par).hw_frames_ctx = (*first.as_ptr()).hw_frames_ctx;
            let r = ffi::av_buffersrc_parameters_set(src.as_mut_ptr(), par);
            ffi::av_free(par.cast());
            if r < 0 {
                return Err(err("buffer parameters", ff::Error::from(r)));
            }
        }
        graph
            .add(&find("buffersink")?, "out", "")
            .map_err(|e| err("buffersink", e))?;
        let spec = match download {
            true => format!("scale_cuda=w={w}:h={h}:interp_algo=bilinear:format=yuv420p,hwdownload,format=yuv420p"),
            false => format!("scale_cuda=w={w}:h={h}:interp_algo=bilinear:format=nv12"),
        };
        graph
            .output("in", 0)
            .and_then(|p| p.input("out", 0))
            .and_then(|p| p.parse(&spec))
            .map_err(|e| err(&spec, e))?;
        graph.validate().map_err(|e| err(&spec, e))?;
        Ok(GpuScaler {
            graph,
            out: ff::frame::Video::empty(),
        })
    }

    /// The frames context of the output (CUDA memory), for NVENC to encode from.
    pub fn hw_frames_ctx(&mut self) -> *mut ffi::AVBufferRef {
        match self.graph.get("out") {
            // SAFETY: the sink is configured (validate succeeded).
            Some(s) => unsafe { ffi::av_buffersink_get_hw_frames_ctx(s.as_ptr()) },
            None => ptr::null_mut(),
        }
    }

    /// Runs one frame through; the result, if one came out, is valid until the next call.
    pub fn run(
        &mut self,
        frame: &ff::frame::Video,
    ) -> Result<Option<&mut ff::frame::Video>, String> {
        let mut src = self.graph.get("in").ok_or("no source")?;
        // SAFETY: write_frame takes its own reference to the frame's buffers.
        let r = unsafe { ffi::av_buffersrc_write_frame(src.as_mut_ptr(), frame.as_ptr()) };
        if r < 0 {
            return Err(format!("scale_cuda: {}", ff::Error::from(r)));
        }
        let mut sink = self.graph.get("out").ok_or("no sink")?;
        match sink.sink().frame(&mut self.out) {
            Ok(()) => Ok(Some(&mut self.out)),
            Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN => Ok(None),
            Err(e) => Err(format!("scale_cuda: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warming_up_works_exactly_where_a_cuda_device_opens() {
        let _ = ff::init();
        match (warm_up(), CudaDevice::open()) {
            (Ok(_), Ok(_)) => {}
            (Err(e), Err(_)) => eprintln!("no CUDA here: {e}"),
            (Ok(_), Err(e)) => panic!("warmed up, yet no device opens: {e}"),
            (Err(e), Ok(_)) => panic!("a device opens, yet warming up failed: {e}"),
        }
    }
}
