//! `skywire-dht`: the DHT service of a cluster on its own, the same as
//! `skywire serve dht`.

fn main() -> anyhow::Result<()> {
    skywire::service_main(skywire::ServiceKind::Dht)
}
