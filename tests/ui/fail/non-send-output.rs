// An output that is not `Send` cannot come back from another thread or task: the error is at the
// return type and says what to add.
use traced_spawn::traced_spawn;

#[traced_spawn]
async fn fetch(url: String) -> Result<usize, Box<dyn std::error::Error>> {
    Ok(url.len())
}

#[traced_spawn]
fn parse(text: String) -> Result<u32, Box<dyn std::error::Error>> {
    Ok(text.parse()?)
}

fn main() {
    let _ = fetch("https://example.org".to_owned());
    let _ = parse("1".to_owned());
}
