import json
from apitest import ApiClient, Seeder
from statest import seed_town, public_id

def test_smoke(client: ApiClient, seed: Seeder) -> None:
    town = seed_town(seed)
    for url in ["/sta/v1.1", "/sta/v1.1/Things", "/sta/v1.1/Datastreams?$top=3", "/sta/v1.1/Sensors", "/sta/v1.1/ObservedProperties?$top=2",
                f"/sta/v1.1/Datastreams({public_id(seed, town.bins[0])*100+1})/Observations?$top=2&$orderby=phenomenonTime desc",
                "/sta/v1.1/Observations?$top=2&$count=true&$expand=Datastream($select=name),FeatureOfInterest",
                "/sta/v1.1/Things?$filter=geo.intersects(location, geography'POLYGON((12.3 51.3, 12.4 51.3, 12.4 51.35, 12.3 51.35, 12.3 51.3))')&$select=name,id",
                "/sta/v1.1/Things(1)/Datastreams?$expand=Observations($top=1;$orderby=phenomenonTime desc),ObservedProperty&$top=1",
                "/sta/v1.1/Things?$filter=name eq 5", "/sta/v1.1/Things?$filter=name eq (", "/sta/v1.1/Things(1)/name/$value",
                "/sta/v1.1/Observations?$filter=result gt 60 and Datastream/id eq 201&$top=2",
                ]:
        r = client.get(url)
        print(url, r.status_code, json.dumps(r.json() if r.headers["content-type"].endswith("json") else r.text, indent=1)[:1500])
