use nursery::{nursery, spawn, Errors};
use std::io;

async fn fetch(x: &u32) -> Result<u32, io::Error> {
    Ok(*x * 2)
}

#[nursery]
async fn gather(xs: &[u32]) -> Result<Vec<u32>, Errors<io::Error>> {
    let handles: Vec<_> = xs.iter().map(|x| spawn!(fetch(x))).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await);
    }
    Ok(out)
}

#[nursery]
async fn with_q() -> Result<(), Errors<io::Error>> {
    spawn!(async {
        let v = fetch(&3).await?;
        assert_eq!(v, 6);
        Ok(())
    });
    let _x = fetch(&1).await?;
    Ok(())
}

#[nursery]
async fn values() -> u32 {
    let a = spawn!(async { 1u32 });
    spawn!(async {});
    a.await + 1
}

#[nursery(n)]
async fn anyhow_fn() -> anyhow::Result<u32> {
    spawn!(async { Err::<(), _>(anyhow::anyhow!("boom")) }, name = "bad");
    n.is_cancelled();
    futures::future::pending::<()>().await;
    Ok(1)
}

#[test]
fn smoke() {
    let xs = [1, 2, 3];
    assert_eq!(futures::executor::block_on(gather(&xs)).unwrap(), vec![2, 4, 6]);
    futures::executor::block_on(with_q()).unwrap();
    assert_eq!(futures::executor::block_on(values()), 2);
    let e = futures::executor::block_on(anyhow_fn()).unwrap_err();
    assert_eq!(e.to_string(), "child `bad` failed: boom");
}

fn is_send<T: Send>(_: &T) {}
#[test]
fn send() {
    let xs = [1u32];
    is_send(&gather(&xs));
}
