pub async fn x() {}
