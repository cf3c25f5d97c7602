//! `rechroma serve`'s API over real loopback HTTP: a good photo, every kind of bad input, the upload
//! limit (declared and chunked), and a burst beyond the queue.
#![cfg(feature = "serve")]

mod common;

use burn::tensor::Device;
use rechroma::infer::Colorizer;
use rechroma::serve::{ServeConfig, router, serve};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn colorizer() -> Arc<Colorizer> {
    static C: OnceLock<Arc<Colorizer>> = OnceLock::new();
    C.get_or_init(|| Arc::new(Colorizer::embedded(&Device::flex()).expect("embedded model")))
        .clone()
}

/// Starts a server on a free loopback port; its base URL.
async fn start(config: ServeConfig) -> String {
    let app = router(colorizer(), config.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { serve(listener, app, &config).await });
    format!("http://{addr}")
}

fn sample() -> Vec<u8> {
    std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/astronaut.jpg")).unwrap()
}

async fn post(base: &str, query: &str, body: Vec<u8>) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/api/colorize{query}"))
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The JSON error message of a response with status `want`.
async fn error(response: reqwest::Response, want: u16) -> String {
    assert_eq!(response.status().as_u16(), want);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    let message = body["error"].as_str().expect("an error message").to_string();
    assert!(!message.is_empty() && !message.contains('\n'), "{message:?}");
    message
}

/// Mean chroma (CIE Lab) of an 8-bit RGB image.
fn mean_chroma(img: &image::DynamicImage) -> f32 {
    rechroma::color::LabImage::from_rgb8(&img.to_rgb8()).mean_chroma()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_photo_comes_back_colorized_at_its_full_size() {
    let base = start(ServeConfig::default()).await;
    let input = image::load_from_memory(&sample()).unwrap();
    assert!(mean_chroma(&input) < 1.0, "the sample is gray");

    let response = post(&base, "", sample()).await;
    assert_eq!(response.status(), 200);
    let h = response.headers().clone();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    assert_eq!(h["x-rechroma-width"], input.width().to_string().as_str());
    let out = image::load_from_memory_with_format(&response.bytes().await.unwrap(), image::ImageFormat::Png).unwrap();
    assert_eq!((out.width(), out.height()), (input.width(), input.height()));
    assert!(mean_chroma(&out) > 2.0, "colorized: mean chroma {}", mean_chroma(&out));

    // JPEG on request; the confidence map of the joint model; vividness 0 gives gray.
    let jpeg = post(&base, "?format=jpeg&quality=90", sample()).await;
    assert_eq!(jpeg.headers()["content-type"], "image/jpeg");
    let jpeg = image::load_from_memory_with_format(&jpeg.bytes().await.unwrap(), image::ImageFormat::Jpeg).unwrap();
    assert_eq!(jpeg.width(), input.width());
    let map = post(&base, "?confidence=true&size=128", sample()).await;
    assert_eq!(map.status(), 200);
    let map = image::load_from_memory(&map.bytes().await.unwrap()).unwrap();
    assert_eq!(map.width(), input.width());
    let faded = post(&base, "?vividness=0", sample()).await;
    let faded = image::load_from_memory(&faded.bytes().await.unwrap()).unwrap();
    assert!(
        mean_chroma(&faded) < 0.5 * mean_chroma(&out),
        "vividness 0 fades the colours"
    );
    // Vividness 2 raises them; cast removal 1 takes the result's overall tint off (its mean colour moves
    // towards neutral).
    let vivid = post(&base, "?vividness=2", sample()).await;
    let vivid = image::load_from_memory(&vivid.bytes().await.unwrap()).unwrap();
    assert!(
        mean_chroma(&vivid) > 1.2 * mean_chroma(&out),
        "vividness 2 raises the colours"
    );
    let neutral = post(&base, "?cast-removal=1", sample()).await;
    let neutral = image::load_from_memory(&neutral.bytes().await.unwrap()).unwrap();
    let tint = |img: &image::DynamicImage| {
        let lab = rechroma::color::LabImage::from_rgb8(&img.to_rgb8());
        let n = lab.pixels();
        let (a, b) = lab.ab().split_at(n);
        let (ma, mb) = (a.iter().sum::<f32>() / n as f32, b.iter().sum::<f32>() / n as f32);
        (ma * ma + mb * mb).sqrt()
    };
    assert!(
        tint(&neutral) < 0.6 * tint(&out),
        "cast: {} → {}",
        tint(&out),
        tint(&neutral)
    );

    let health = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let models = reqwest::get(format!("{base}/api/models"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let models: serde_json::Value = serde_json::from_slice(&models).unwrap();
    assert_eq!(models["models"][0]["name"], "embedded");
    assert_eq!(models["limits"]["max_upload_bytes"], 64 << 20);
    let page = reqwest::get(format!("{base}/")).await.unwrap();
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert!(page.text().await.unwrap().contains("<script src=\"/app.js\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_16_bit_png_comes_back_16_bit() {
    let base = start(ServeConfig::default()).await;
    let gray = image::DynamicImage::ImageLuma16(image::ImageBuffer::from_fn(96, 64, |x, y| {
        image::Luma([(x * 600 + y * 200) as u16])
    }));
    let mut png = std::io::Cursor::new(Vec::new());
    gray.write_to(&mut png, image::ImageFormat::Png).unwrap();
    let response = post(&base, "?size=64", png.into_inner()).await;
    assert_eq!(response.status(), 200);
    let out = image::load_from_memory(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(out.color(), image::ColorType::Rgb16);
    assert_eq!((out.width(), out.height()), (96, 64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_input_gets_its_4xx_and_a_json_message_at_once() {
    let base = start(ServeConfig::default()).await;
    let jpeg = sample();
    let cases: Vec<(&str, &str, Vec<u8>, u16, &str)> = vec![
        ("empty body", "", vec![], 400, "empty"),
        (
            "text",
            "",
            b"hello, this is not a photo".to_vec(),
            422,
            "unknown or unsupported image format",
        ),
        ("truncated JPEG", "", jpeg[..jpeg.len() / 2].to_vec(), 422, "truncated"),
        (
            "PNG declaring 60000²",
            "",
            common::png_declaring(60_000, 60_000),
            422,
            "more than the limit",
        ),
        (
            "JPEG declaring 60000²",
            "",
            common::jpeg_declaring(60_000, 60_000),
            422,
            "more than the limit",
        ),
        ("unknown parameter", "?vividnes=0.5", jpeg.clone(), 400, "vividnes"),
        ("size out of range", "?size=5", jpeg.clone(), 400, "size=5"),
        (
            "vividness out of range",
            "?vividness=2.5",
            jpeg.clone(),
            400,
            "vividness=2.5",
        ),
        (
            "cast removal out of range",
            "?cast-removal=1.5",
            jpeg.clone(),
            400,
            "cast-removal=1.5",
        ),
        ("bad format", "?format=gif", jpeg.clone(), 400, "format"),
    ];
    for (what, query, body, status, says) in cases {
        let start = Instant::now();
        let message = error(post(&base, query, body).await, status).await;
        assert!(message.contains(says), "{what}: {message}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{what} took {:?}",
            start.elapsed()
        );
    }
    let missing = reqwest::get(format!("{base}/etc/passwd")).await.unwrap();
    error(missing, 404).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_over_the_limit_gets_413_declared_or_streamed() {
    let limit = 100_000;
    let base = start(ServeConfig {
        max_upload_bytes: limit,
        ..ServeConfig::default()
    })
    .await;
    let message = error(post(&base, "", vec![0u8; limit + 1]).await, 413).await;
    assert!(message.contains("larger than the limit"), "{message}");

    // No Content-Length: chunks that pass the limit midway are refused as they arrive.
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/colorize HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'x'; 16_384];
    for _ in 0..(limit / chunk.len() + 2) {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend(&chunk);
        frame.extend(b"\r\n");
        if stream.write_all(&frame).await.is_err() {
            break; // the server answered and closed: fine
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_the_queue_gets_503s_and_the_server_carries_on() {
    let base = start(ServeConfig {
        jobs: 1,
        queue: 1,
        ..ServeConfig::default()
    })
    .await;
    let burst: Vec<_> = (0..10)
        .map(|_| {
            let base = base.clone();
            tokio::spawn(async move { post(&base, "?size=384", sample()).await })
        })
        .collect();
    let (mut ok, mut busy) = (0, 0);
    for r in burst {
        let response = r.await.unwrap();
        match response.status().as_u16() {
            200 => ok += 1,
            503 => {
                assert!(response.headers().contains_key("retry-after"));
                error(response, 503).await;
                busy += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(ok >= 2 && busy >= 1, "{ok} answered, {busy} refused");
    assert_eq!(
        post(&base, "?size=64", sample()).await.status(),
        200,
        "still serving after the burst"
    );
}

/// A raw HTTP/1.1 exchange: sends `request` and reads until the server closes or 10 s pass.
async fn raw(addr: &str, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
    String::from_utf8_lossy(&response).into_owned()
}

/// Posts the sample at `?size=64` until it is answered 200, honouring `Retry-After`; the time it took.
async fn small_photo_until_ok(base: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let response = post(base, "?size=64", sample()).await;
        match response.status().as_u16() {
            200 => return start.elapsed(),
            503 => {
                assert!(start.elapsed() < limit, "still 503 after {:?}", start.elapsed());
                let wait: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
            other => panic!("unexpected status {other}: {}", response.text().await.unwrap()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_uploads_do_not_lock_others_out() {
    // The issue's attack: clients that claim 10 MB and send 10 bytes. Six against the defaults, two
    // against one job and a queue of one.
    for (jobs, queue, idlers) in [(2, 4, 6), (1, 1, 2)] {
        let base = start(ServeConfig {
            jobs,
            queue,
            ..ServeConfig::default()
        })
        .await;
        let addr = base.trim_start_matches("http://").to_string();
        let mut idle = Vec::new();
        for _ in 0..idlers {
            let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let head =
                format!("POST /api/colorize HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 10485760\r\n\r\n0123456789");
            s.write_all(head.as_bytes()).await.unwrap();
            idle.push(s);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let took = small_photo_until_ok(&base, Duration::from_secs(30)).await;
        assert!(
            took < Duration::from_secs(10),
            "{idlers} idle uploads kept a photo waiting {took:?} ({jobs} jobs, queue {queue})"
        );
        // The stalled uploads themselves are dropped after the idle limit (408).
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(30), idle[0].read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("stalled"), "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_large_work_stops_and_the_working_size_is_capped() {
    let base = start(ServeConfig {
        timeout: Duration::from_secs(25),
        ..ServeConfig::default()
    })
    .await;
    // Over the server's maximum working size: 422 naming the limit, before the body is read.
    let message = error(post(&base, "?size=2048", sample()).await, 422).await;
    assert!(message.contains("limit is 1024"), "{message}");

    // Six requests at the maximum whose clients give up after a second: their work stops at its next
    // stage, so a small photo after them is answered well within the timeout (run to the end, the six
    // forward passes at 1024² would take longer than it).
    let abandoned: Vec<_> = (0..6)
        .map(|_| {
            let base = base.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(1))
                    .build()
                    .unwrap();
                let _ = client
                    .post(format!("{base}/api/colorize?size=1024"))
                    .body(sample())
                    .send()
                    .await;
            })
        })
        .collect();
    for a in abandoned {
        a.await.unwrap();
    }
    let took = small_photo_until_ok(&base, Duration::from_secs(25)).await;
    eprintln!("a small photo after six abandoned 1024² requests: {took:?}");
    // Of the six, at most the forward pass under way when they were abandoned (and one whose stage
    // had just begun) ran to its end; the others stopped at a stage boundary or never started.
    let health = reqwest::get(format!("{base}/healthz"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let health: serde_json::Value = serde_json::from_slice(&health).unwrap();
    let (finished, stopped) = (
        health["jobs_finished"].as_u64().unwrap(),
        health["jobs_stopped"].as_u64().unwrap(),
    );
    assert!(
        finished <= 1 + 2,
        "{finished} jobs ran to the end (the small photo is one): {health}"
    );
    assert!(stopped >= 1, "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off_and_connections_are_capped() {
    let config = ServeConfig {
        header_timeout: Duration::from_secs(2),
        max_connections: 100,
        ..ServeConfig::default()
    };
    let base = start(config).await;
    let addr = base.trim_start_matches("http://").to_string();
    // 200 slowloris connections: half over the cap (closed at once), half cut at the header timeout.
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: ").await;
        slow.push(s);
    }
    let opened = Instant::now();
    // Meanwhile a normal client is served (once the cap's excess is gone, within the header timeout).
    let start = Instant::now();
    loop {
        match reqwest::get(format!("{base}/healthz")).await {
            Ok(r) if r.status() == 200 => break,
            _ => {
                assert!(start.elapsed() < Duration::from_secs(15), "never served");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    for mut s in slow {
        let mut buf = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf)).await;
        assert!(
            closed.is_ok(),
            "a slow connection was still open after {:?}",
            opened.elapsed()
        );
    }
    assert!(opened.elapsed() < Duration::from_secs(20));
    // An idle keep-alive connection is closed after the same timeout.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    let idle = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf)).await;
    assert!(closed.is_ok() && String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));
    assert!(
        idle.elapsed() >= Duration::from_secs(1),
        "kept alive for a while: {:?}",
        idle.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_this_origin_may_use_the_server() {
    let base = start(ServeConfig::default()).await;
    let addr = base.trim_start_matches("http://").to_string();
    let port = addr.rsplit(':').next().unwrap();
    let head = |host: &str, origin: Option<&str>, body: &str| {
        let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
        format!(
            "POST /api/colorize?size=64 HTTP/1.1\r\nHost: {host}\r\n{origin}Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    // DNS rebinding: a hostile name pointed at 127.0.0.1 → 421, JSON, with the security headers.
    let answer = raw(&addr, head(&format!("evil.example:{port}"), None, "x").as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 421"), "{answer}");
    assert!(
        answer.contains("content-type: application/json") && answer.contains("content-security-policy"),
        "{answer}"
    );
    assert!(answer.contains("\"error\""), "{answer}");
    // A page elsewhere posting text/plain (a "simple" request, no preflight) → 403.
    let answer = raw(&addr, head(&addr, Some("http://evil.example"), "x").as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    let answer = raw(&addr, head(&addr, Some("null"), "x").as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    // The server's own page (any loopback name with the port) is fine.
    for host in [addr.clone(), format!("localhost:{port}")] {
        let response = reqwest::Client::new()
            .post(format!("{base}/api/colorize?size=64"))
            .header("host", &host)
            .header("origin", format!("http://{host}"))
            .body(sample())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{host}");
        assert!(
            !response.headers().contains_key("access-control-allow-origin"),
            "no CORS"
        );
    }
    // Another method on a known route: 405 with a JSON body and the headers.
    let response = reqwest::get(format!("{base}/api/colorize")).await.unwrap();
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    error(response, 405).await;

    // With an access token (a bind beyond loopback), every API call needs it; the page does not.
    let token = "0123456789abcdef0123456789abcdef".to_string();
    let base = start(ServeConfig {
        token: Some(token.clone()),
        ..ServeConfig::default()
    })
    .await;
    let message = error(reqwest::get(format!("{base}/api/models")).await.unwrap(), 401).await;
    assert!(message.contains("access token"), "{message}");
    let wrong = reqwest::Client::new()
        .get(format!("{base}/api/models"))
        .bearer_auth("0123456789abcdef0123456789abcdee")
        .send()
        .await
        .unwrap();
    error(wrong, 401).await;
    let right = reqwest::Client::new()
        .post(format!("{base}/api/colorize?size=64"))
        .bearer_auth(&token)
        .body(sample())
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), 200);
    assert_eq!(reqwest::get(format!("{base}/")).await.unwrap().status(), 200);
}

/// A tiny hint-taking joint MLEU with random weights whose hints visibly change its output (its last
/// hint weights set to one), served like the embedded model.
fn tiny_hint_colorizer(hints: bool) -> Arc<Colorizer> {
    use rechroma::model::mleu::Head;
    use rechroma::model::{ModelConfig, Network};
    let device = Device::flex();
    device.seed(11);
    let config = rechroma::model::mleu::MleuConfig {
        hints,
        ..common::tiny_mleu([8, 8, 8, 8, 8], Head::Joint)
    };
    let mut net = config.init(&device);
    if let Some(conv) = net.hint_skip.take() {
        net.hint_skip = Some(burn::nn::conv::Conv2d {
            weight: conv.weight.map(|w| w.ones_like()),
            ..conv
        });
    }
    let model = rechroma::run::Model {
        config: rechroma::RunConfig::new(ModelConfig::Mleu(config), rechroma::TrainConfig::default()),
        network: Network::Mleu(net),
        prior: None,
    };
    Arc::new(Colorizer::new(model, &device, "tiny".into()))
}

async fn start_with(colorizer: Arc<Colorizer>, config: ServeConfig) -> String {
    let app = router(colorizer, config.clone()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { serve(listener, app, &config).await });
    format!("http://{addr}")
}

/// POSTs `body` (or nothing) to `url`.
async fn send(client: &reqwest::Client, url: String, body: Option<Vec<u8>>) -> reqwest::Response {
    client.post(url).body(body.unwrap_or_default()).send().await.unwrap()
}

async fn json_of(response: reqwest::Response) -> serde_json::Value {
    assert_eq!(response.status(), 200);
    serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_takes_hints_on_kept_photos_and_refuses_bad_ones() {
    let base = start_with(tiny_hint_colorizer(true), ServeConfig::default()).await;
    let client = reqwest::Client::new();
    let models = json_of(reqwest::get(format!("{base}/api/models")).await.unwrap()).await;
    assert_eq!(models["models"][0]["controls"]["hints"], true);
    // Keep the photo once; the same bytes give the same id.
    let kept = json_of(send(&client, format!("{base}/api/photos"), Some(sample())).await).await;
    let id = kept["photo"].as_str().unwrap().to_string();
    assert_eq!(
        (kept["width"].as_u64(), kept["height"].as_u64()),
        (Some(512), Some(512))
    );
    let again = json_of(send(&client, format!("{base}/api/photos"), Some(sample())).await).await;
    assert_eq!(again["photo"], kept["photo"]);
    let run = |query: String| {
        let client = client.clone();
        let base = base.clone();
        async move { send(&client, format!("{base}/api/colorize?{query}"), None).await }
    };
    let enc = |json: &str| json.replace('#', "%23").replace('"', "%22").replace(' ', "%20");
    let hints = enc(r##"[{"x": 256, "y": 200, "color": "#b03030", "radius": 40}]"##);
    let plain = run(format!("photo={id}&size=64")).await;
    assert_eq!(plain.status(), 200);
    let plain = image::load_from_memory(&plain.bytes().await.unwrap())
        .unwrap()
        .to_rgb8();
    let hinted = run(format!("photo={id}&size=64&hints={hints}")).await;
    assert_eq!(hinted.status(), 200);
    assert_eq!(hinted.headers()["x-rechroma-width"], "512");
    let hinted = image::load_from_memory(&hinted.bytes().await.unwrap())
        .unwrap()
        .to_rgb8();
    assert_eq!(hinted.dimensions(), (512, 512));
    let changed = |x: u32, y: u32| plain.get_pixel(x, y) != hinted.get_pixel(x, y);
    assert!(changed(256, 200), "the hint changes its place");
    // The preview: the same colours, at most the preview side (the sample is smaller: its own size).
    let preview = run(format!("photo={id}&size=64&preview=true&format=jpeg&hints={hints}")).await;
    assert_eq!(preview.status(), 200);
    assert_eq!(preview.headers()["content-type"], "image/jpeg");
    // The same hints with an upload instead of a kept photo.
    let uploaded = send(
        &client,
        format!("{base}/api/colorize?size=64&hints={hints}"),
        Some(sample()),
    )
    .await;
    let uploaded = image::load_from_memory(&uploaded.bytes().await.unwrap())
        .unwrap()
        .to_rgb8();
    assert_eq!(uploaded.get_pixel(256, 200), hinted.get_pixel(256, 200));
    // Refusals.
    let outside = enc(r##"[{"x": 600, "y": 10, "color": "#b03030"}]"##);
    let message = error(run(format!("photo={id}&hints={outside}")).await, 422).await;
    assert!(message.contains("outside the 512×512 photo"), "{message}");
    let malformed = enc(r##"[{"x": 1, "y": 1, "color": "#b0303"}]"##);
    let message = error(run(format!("photo={id}&hints={malformed}")).await, 400).await;
    assert!(message.contains("hints: hint 0"), "{message}");
    error(run("photo=0123&size=64".into()).await, 404).await;
    let message = error(
        send(
            &client,
            format!("{base}/api/colorize?size=64&preview=true"),
            Some(sample()),
        )
        .await,
        400,
    )
    .await;
    assert!(message.contains("photo=ID"), "{message}");
    // Suggestions at a point, most likely first; outside the photo: 422.
    let s = json_of(
        send(
            &client,
            format!("{base}/api/suggest?photo={id}&x=10&y=10&count=4"),
            None,
        )
        .await,
    )
    .await;
    let s = s["suggestions"].as_array().unwrap();
    assert_eq!(s.len(), 4);
    assert!(s.iter().all(|c| c["color"].as_str().unwrap().len() == 7));
    error(
        send(&client, format!("{base}/api/suggest?photo={id}&x=600&y=10"), None).await,
        422,
    )
    .await;
    // A model that takes no hints refuses them (400) and still colorizes without.
    let base = start_with(tiny_hint_colorizer(false), ServeConfig::default()).await;
    let message = error(
        send(
            &client,
            format!("{base}/api/colorize?size=64&hints={hints}"),
            Some(sample()),
        )
        .await,
        400,
    )
    .await;
    assert!(message.contains("takes no colour hints"), "{message}");
}
