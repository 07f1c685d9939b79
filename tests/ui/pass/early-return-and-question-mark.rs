use std::num::ParseIntError;

use traced_spawn::traced_spawn;

#[traced_spawn]
fn parse(input: String) -> Result<u32, ParseIntError> {
    if input.is_empty() {
        return Ok(0);
    }
    let n: u32 = input.trim().parse()?;
    Ok(n * 2)
}

#[traced_spawn]
fn boxed_error(input: String) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    let n: u32 = input.parse()?;
    if n > 10 {
        return Err("too big".into());
    }
    Ok(n)
}

#[traced_spawn]
fn first(values: Vec<u32>) -> Option<u32> {
    let first = values.first()?;
    Some(*first)
}

#[traced_spawn]
async fn parse_async(input: String) -> Result<u32, ParseIntError> {
    if input == "skip" {
        return Ok(7);
    }
    Ok(input.parse::<u32>()? + 1)
}

#[tokio::main]
async fn main() {
    assert_eq!(parse(String::new()).join().unwrap(), Ok(0));
    assert_eq!(parse("21".to_owned()).join().unwrap(), Ok(42));
    assert!(parse("x".to_owned()).join().unwrap().is_err());
    assert!(boxed_error("11".to_owned()).join().unwrap().is_err());
    assert_eq!(boxed_error("3".to_owned()).join().unwrap().unwrap(), 3);
    assert_eq!(first(vec![]).join().unwrap(), None);
    assert_eq!(parse_async("skip".to_owned()).await.unwrap(), Ok(7));
    assert_eq!(parse_async("1".to_owned()).await.unwrap(), Ok(2));
    assert!(parse_async("x".to_owned()).await.unwrap().is_err());
}
