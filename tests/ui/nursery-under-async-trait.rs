use nursery::{nursery, spawn};
use std::future::Future;
use std::pin::Pin;

struct Server;

impl Server {
    // What `#[async_trait]` (on the impl block, so it runs first) makes of
    // `#[nursery] async fn serve(&self)` before `#[nursery]` sees it.
    #[nursery]
    fn serve<'life0, 'async_trait>(&'life0 self) -> Pin<Box<dyn Future<Output = ()> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            spawn!(async {});
        })
    }
}

fn main() {}
