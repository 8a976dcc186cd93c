// Unit tests of request building and response conversion (no server).
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import * as convert from "../../src/convert.js";
import { decodeBadRequest } from "../../src/errors.js";
import { CollectionSchema, DistanceMetric, IndexBuild, IndexPrecision, IndexState, KeywordRanking } from "../../src/gen/fathom/v1/collections_pb.js";
import { DocumentSchema, UpdateRequestSchema } from "../../src/gen/fathom/v1/documents_pb.js";
import { SearchHitSchema, SearchRequestSchema } from "../../src/gen/fathom/v1/search_pb.js";

describe("searchRequest", () => {
  it("needs a vector, a text or an example id", () => {
    assert.throws(() => convert.searchRequest("docs", undefined, {}), /a vector, a text or an exampleId/);
    assert.throws(() => convert.searchRequest("docs", undefined, { exampleId: "" }), /a vector, a text or an exampleId/);
  });

  it("sends an example id alone, with a text and a filter, and leaves vector plus example id to the server", () => {
    const alone = convert.searchRequest("docs", undefined, { exampleId: "d7" });
    assert.equal(alone.exampleId, "d7");
    assert.deepEqual(alone.vector, []);
    assert.equal(alone.text, undefined);
    const hybrid = convert.searchRequest("docs", "t1", { exampleId: "d7", text: "fox", filter: { lang: "en" } });
    assert.deepEqual([hybrid.exampleId, hybrid.text, hybrid.tenant], ["d7", "fox", "t1"]);
    assert.equal(hybrid.filter?.node.case, "field");
    const both = convert.searchRequest("docs", undefined, { exampleId: "d7", vector: [1, 0] });
    assert.deepEqual([both.exampleId, both.vector], ["d7", [1, 0]]);
  });

  it("sends offset and candidates as given, and offset 0 by default", () => {
    const page = convert.searchRequest("docs", undefined, { vector: [1, 0], limit: 5, offset: 10, candidates: 15 });
    assert.deepEqual([page.offset, page.limit, page.candidates], [10, 5, 15]);
    const first = convert.searchRequest("docs", undefined, { text: "fox" });
    assert.deepEqual([first.offset, first.exampleId], [0, ""]);
    const decoded = fromBinary(SearchRequestSchema, toBinary(SearchRequestSchema, page));
    assert.deepEqual([decoded.offset, decoded.limit, decoded.candidates], [10, 5, 15]);
  });

  it("refuses a limit, candidates, offset or efSearch that is no uint32, naming it", () => {
    const vector = [1, 0];
    assert.throws(() => convert.searchRequest("docs", undefined, { vector, offset: -1 }), /offset must be a whole number/);
    assert.throws(() => convert.searchRequest("docs", undefined, { vector, limit: 2.5 }), /limit must be a whole number/);
    assert.throws(() => convert.searchRequest("docs", undefined, { vector, candidates: 2 ** 32 }), /candidates must/);
    assert.throws(() => convert.searchRequest("docs", undefined, { vector, efSearch: -3 }), /efSearch must/);
    assert.equal(convert.searchRequest("docs", undefined, { vector, offset: 2 ** 32 - 1 }).offset, 2 ** 32 - 1);
  });

  it("leaves optional parts unset for a plain vector search", () => {
    const request = convert.searchRequest("docs", undefined, { vector: new Float32Array([1, 2, 3]) });
    assert.deepEqual(request.vector, [1, 2, 3]);
    assert.equal(request.text, undefined);
    assert.equal(request.fusion, undefined);
    assert.equal(request.include, undefined);
    assert.equal(request.params, undefined);
    assert.equal(request.scoreThreshold, undefined);
    assert.equal(request.limit, 10);
    assert.equal(request.tenant, "");
  });

  it("sends an empty text as set", () => {
    assert.equal(convert.searchRequest("docs", undefined, { text: "" }).text, "");
  });

  it("builds a full hybrid request", () => {
    const request = convert.searchRequest("docs", "t1", {
      vector: [0.5, 0.25],
      text: "fox",
      filter: { lang: "en" },
      limit: 5,
      fusion: { method: "rrf", k: 10, textWeight: 2 },
      include: ["text", "vector"],
      candidates: 50,
      exact: true,
      efSearch: 200,
      scoreThreshold: 0.1,
    });
    assert.equal(request.tenant, "t1");
    assert.equal(request.filter?.node.case, "field");
    assert.equal(request.fusion?.method.case, "rrf");
    const rrf = request.fusion?.method.case === "rrf" ? request.fusion.method.value : undefined;
    assert.equal(rrf?.k, 10);
    assert.equal(rrf?.textWeight, 2);
    assert.equal(rrf?.vectorWeight, undefined);
    assert.deepEqual([request.include?.text, request.include?.metadata, request.include?.vector], [true, false, true]);
    assert.equal(request.candidates, 50);
    assert.deepEqual([request.params?.exact, request.params?.efSearch], [true, 200]);
    assert.equal(request.scoreThreshold, 0.1);
  });

  it("maps fusion names and relative score alpha", () => {
    assert.equal(convert.fusionToProto("rrf")?.method.case, "rrf");
    const relative = convert.fusionToProto({ method: "relative_score", alpha: 0.3 });
    assert.equal(relative?.method.case === "relativeScore" && relative.method.value.alpha, 0.3);
    const defaults = convert.fusionToProto("relative_score");
    assert.equal(defaults?.method.case === "relativeScore" && defaults.method.value.alpha, undefined);
    assert.throws(() => convert.fusionToProto("max" as "rrf"), /unknown fusion/);
  });

  it("checks include fields", () => {
    assert.throws(() => convert.includeToProto(["txt" as "text"]), /unknown include/);
    const none = convert.includeToProto([]);
    assert.deepEqual([none?.text, none?.metadata, none?.vector], [false, false, false]);
  });
});

describe("collections", () => {
  it("builds CreateCollectionRequest", () => {
    const request = convert.createCollectionRequest("docs", 32, { metric: "l2", language: "simple", multiTenant: true });
    assert.equal(request.metric, DistanceMetric.L2);
    assert.deepEqual([request.textLanguage, request.multiTenant, request.dimension], ["simple", true, 32]);
    assert.equal(request.index, undefined);
    assert.equal(request.deferIndex, false);
    assert.equal(request.indexBuild, IndexBuild.UNSPECIFIED); // the server's default: automatic
    const defaults = convert.createCollectionRequest("docs", 3);
    assert.deepEqual([defaults.metric, defaults.textLanguage], [DistanceMetric.COSINE, "english"]);
    const hnsw = convert.createCollectionRequest("d", 3, { index: { kind: "hnsw", m: 8 } }).index?.kind;
    assert.equal(hnsw?.case === "hnsw" && hnsw.value.m, 8);
    assert.equal(convert.createCollectionRequest("d", 3, { index: "none" }).index?.kind.case, "none");
    assert.throws(() => convert.createCollectionRequest("d", 3, { metric: "dot" as "l2" }), /unknown metric/);
  });

  it("builds CreateCollectionRequest with a deferred index", () => {
    const request = convert.createCollectionRequest("docs", 8, { index: { kind: "hnsw", m: 8 }, deferIndex: true });
    assert.equal(request.deferIndex, true);
    assert.equal(request.index?.kind.case, "hnsw");
  });

  it("builds CreateCollectionRequest with an index build", () => {
    const builds = [
      ["automatic", IndexBuild.AUTOMATIC],
      ["immediate", IndexBuild.IMMEDIATE],
      ["on_request", IndexBuild.ON_REQUEST],
    ] as const;
    for (const [indexBuild, proto] of builds) {
      const request = convert.createCollectionRequest("d", 3, { indexBuild });
      assert.deepEqual([request.indexBuild, request.deferIndex], [proto, false]);
    }
    assert.throws(() => convert.createCollectionRequest("d", 3, { indexBuild: "later" as "automatic" }), /unknown indexBuild "later"/);
  });

  it("leaves deferIndex with another indexBuild to the server to refuse", () => {
    const request = convert.createCollectionRequest("d", 3, { deferIndex: true, indexBuild: "immediate" });
    assert.deepEqual([request.deferIndex, request.indexBuild], [true, IndexBuild.IMMEDIATE]);
  });

  it("names the index build", () => {
    const builds: [IndexBuild, string][] = [
      [IndexBuild.AUTOMATIC, "automatic"],
      [IndexBuild.IMMEDIATE, "immediate"],
      [IndexBuild.ON_REQUEST, "on_request"],
      [IndexBuild.UNSPECIFIED, "unspecified"], // a server older than index builds
      [99 as IndexBuild, "unspecified"], // a value newer than this client
    ];
    for (const [indexBuild, name] of builds) {
      assert.equal(convert.collectionInfo(create(CollectionSchema, { name: "docs", dimension: 4, indexBuild })).indexBuild, name);
    }
  });

  it("leaves the index precision to the server unless asked", () => {
    for (const index of ["hnsw", { kind: "hnsw", m: 8 }] as const) {
      const kind = convert.createCollectionRequest("d", 3, { index }).index?.kind;
      assert.equal(kind?.case === "hnsw" && kind.value.precision, IndexPrecision.UNSPECIFIED);
    }
  });

  it("builds CreateCollectionRequest with an index precision", () => {
    const precisions = [
      ["half", IndexPrecision.HALF],
      ["single", IndexPrecision.SINGLE],
    ] as const;
    for (const [precision, proto] of precisions) {
      const kind = convert.createCollectionRequest("d", 3, { index: { kind: "hnsw", m: 8, efConstruction: 32, precision } }).index?.kind;
      assert.deepEqual(kind?.case === "hnsw" && [kind.value.m, kind.value.efConstruction, kind.value.precision], [8, 32, proto]);
    }
    assert.throws(
      () => convert.createCollectionRequest("d", 3, { index: { kind: "hnsw", precision: "double" as "half" } }),
      /unknown index precision "double"/,
    );
  });

  it("reads the index precision", () => {
    const precisions: [IndexPrecision, string | undefined][] = [
      [IndexPrecision.HALF, "half"],
      [IndexPrecision.SINGLE, "single"],
      [IndexPrecision.UNSPECIFIED, undefined], // a server older than index precisions
      [99 as IndexPrecision, undefined], // a precision newer than this client
    ];
    for (const [precision, name] of precisions) {
      const info = convert.collectionInfo(
        create(CollectionSchema, { name: "docs", dimension: 4, index: { kind: { case: "hnsw", value: { m: 16, efConstruction: 64, precision } } } }),
      );
      assert.deepEqual(info.index, { kind: "hnsw", m: 16, efConstruction: 64, ...(name ? { precision: name } : {}) });
    }
  });

  it("names the index state", () => {
    const states: [IndexState, string][] = [
      [IndexState.READY, "ready"],
      [IndexState.DEFERRED, "deferred"],
      [IndexState.BUILDING, "building"],
      [IndexState.UNSPECIFIED, "unspecified"],
      [99 as IndexState, "unspecified"], // a state newer than this client
    ];
    for (const [indexState, name] of states) {
      assert.equal(convert.collectionInfo(create(CollectionSchema, { name: "docs", dimension: 4, indexState })).indexState, name);
    }
  });

  it("names the keyword ranking", () => {
    const rankings: [KeywordRanking, string][] = [
      [KeywordRanking.BM25, "bm25"],
      [KeywordRanking.TS_RANK, "ts_rank"],
      [KeywordRanking.UNSPECIFIED, "unspecified"],
      [99 as KeywordRanking, "unspecified"], // a ranking newer than this client
    ];
    for (const [keywordRanking, name] of rankings) {
      assert.equal(convert.collectionInfo(create(CollectionSchema, { name: "docs", dimension: 4, keywordRanking })).keywordRanking, name);
    }
  });

  it("converts Collection", () => {
    const info = convert.collectionInfo(
      create(CollectionSchema, {
        name: "docs",
        dimension: 4,
        metric: DistanceMetric.INNER_PRODUCT,
        index: { kind: { case: "hnsw", value: { m: 16, efConstruction: 64 } } },
        textLanguage: "english",
        createTime: timestampFromDate(new Date("2024-01-01T00:00:00Z")),
      }),
    );
    assert.equal(info.metric, "inner_product");
    assert.deepEqual(info.index, { kind: "hnsw", m: 16, efConstruction: 64 });
    assert.equal(info.createTime?.toISOString(), "2024-01-01T00:00:00.000Z");
  });
});

describe("documents", () => {
  it("converts inputs with metadata", () => {
    const doc = convert.documentToProto({
      id: "a",
      vector: [1, 2],
      text: "hello",
      metadata: { year: 2024, when: new Date("2024-05-01T00:00:00Z"), tags: ["x"], skip: undefined, nested: { ok: true } },
    });
    assert.deepEqual(doc.vector, [1, 2]);
    assert.deepEqual(doc.metadata, { year: 2024, when: "2024-05-01T00:00:00Z", tags: ["x"], nested: { ok: true } });
    assert.equal(convert.documentToProto({ id: "b", vector: [1] }).metadata, undefined);
  });

  it("refuses bad inputs with their position", () => {
    assert.throws(() => convert.documentToProto({ id: 1 as unknown as string, vector: [1] }, 7), /#7: id must be a string/);
    assert.throws(() => convert.documentToProto({ id: "a" } as never, 3), /#3 has no vector/);
    assert.throws(() => convert.metadataToJson({ x: Number.NaN }), /finite/);
  });

  it("converts documents and hits", () => {
    const doc = convert.documentFromProto(create(DocumentSchema, { id: "a", text: "t", metadata: { n: 1 } }));
    assert.deepEqual(doc, { id: "a", text: "t", metadata: { n: 1 } });
    const hit = convert.hitFromProto(
      create(SearchHitSchema, { id: "a", score: 0.5, vectorLeg: { rank: 3, score: 0.75 }, text: "t" }),
    );
    assert.deepEqual(hit, { id: "a", score: 0.5, vectorRank: 3, vectorScore: 0.75, text: "t", metadata: {} });
  });

  it("builds UpsertRequest", () => {
    const request = convert.upsertRequest("docs", "t1", [convert.documentToProto({ id: "a", vector: [1, 2], text: "x" })]);
    assert.deepEqual([request.collection, request.tenant, request.documents.length], ["docs", "t1", 1]);
    assert.deepEqual(request.documents[0]?.vector, [1, 2]);
  });

  it("drops empty metadata (unset means {})", () => {
    assert.equal(convert.documentToProto({ id: "a", vector: [1], metadata: {} }).metadata, undefined);
    assert.equal(convert.documentToProto({ id: "a", vector: [1], metadata: { x: undefined } }).metadata, undefined);
  });
});

describe("selectors, deletes and updates", () => {
  it("builds DeleteRequest by ids and by filter", () => {
    const byIds = convert.deleteRequest("docs", "t1", { ids: ["a", "b"] });
    assert.deepEqual([byIds.collection, byIds.tenant], ["docs", "t1"]);
    assert.deepEqual(byIds.selector.case === "ids" && byIds.selector.value.ids, ["a", "b"]);
    assert.equal(convert.deleteRequest("docs", "", { filter: { lang: "en" } }).selector.case, "filter");
  });

  it("needs exactly one of ids and filter, naming the call", () => {
    assert.throws(() => convert.deleteRequest("docs", "", {} as never), /delete needs exactly one of ids and filter/);
    const both = { ids: ["a"], filter: { lang: "en" } } as never;
    assert.throws(() => convert.updateRequest("docs", "", both, { text: "x" }), /update needs exactly one of ids and filter/);
    assert.throws(() => convert.updateRequest("docs", "", {} as never, { text: "x" }), /update needs exactly one/);
  });

  it("leaves the parts of an update left out unset", () => {
    const request = convert.updateRequest("docs", "t1", { ids: ["a"] }, { deleteMetadataKeys: ["draft"] });
    assert.deepEqual([request.collection, request.tenant], ["docs", "t1"]);
    assert.deepEqual(request.selector.case === "ids" && request.selector.value.ids, ["a"]);
    assert.equal(request.text, undefined);
    assert.equal(request.setMetadata, undefined);
    assert.equal(request.replaceMetadata, false);
    assert.deepEqual(request.deleteMetadataKeys, ["draft"]);
  });

  it("sends an empty text and empty metadata as set", () => {
    const change = { text: "", setMetadata: {}, replaceMetadata: true };
    const request = convert.updateRequest("docs", "", { filter: { lang: "en" } }, change);
    assert.equal(request.selector.case, "filter");
    const decoded = fromBinary(UpdateRequestSchema, toBinary(UpdateRequestSchema, request));
    assert.equal(decoded.text, "");
    assert.deepEqual(decoded.setMetadata, {});
    assert.equal(decoded.replaceMetadata, true);
  });

  it("converts the metadata of an update as an upsert's, naming setMetadata", () => {
    const setMetadata = { when: new Date("2024-05-01T00:00:00Z"), gone: undefined, tags: ["x"] };
    const request = convert.updateRequest("docs", "", { ids: ["a"] }, { setMetadata });
    assert.deepEqual(request.setMetadata, { when: "2024-05-01T00:00:00Z", tags: ["x"] });
    assert.throws(
      () => convert.updateRequest("docs", "", { ids: ["a"] }, { setMetadata: { x: Number.POSITIVE_INFINITY } }),
      /setMetadata\.x: JSON numbers are finite/,
    );
  });

  it("leaves an update that changes nothing to the server to refuse", () => {
    const request = convert.updateRequest("docs", "", { ids: ["a"] }, {});
    assert.deepEqual([request.text, request.setMetadata, request.deleteMetadataKeys], [undefined, undefined, []]);
  });
});

describe("batching", () => {
  const unit = () => 1;

  it("cuts sync and async sources by count", async () => {
    const sizes: number[] = [];
    for await (const batch of convert.batched([1, 2, 3, 4, 5, 6, 7], 3, 1 << 20, unit)) sizes.push(batch.length);
    assert.deepEqual(sizes, [3, 3, 1]);
    async function* source() {
      for (let i = 0; i < 4; i++) yield i;
    }
    const batches: number[][] = [];
    for await (const batch of convert.batched(source(), 2, 1 << 20, unit)) batches.push(batch);
    assert.deepEqual(batches, [[0, 1], [2, 3]]);
    assert.deepEqual(await collect(convert.batched([], 3, 10, unit)), []);
  });

  it("cuts by bytes; a larger item travels alone", async () => {
    const items = Array.from({ length: 10 }, (_, i) => i);
    const cut = async (size: number, bytes: number, sizeOf = (_: number) => 31) =>
      (await collect(convert.batched(items, size, bytes, sizeOf))).map((b) => b.length);
    assert.deepEqual(await cut(100, 31 * 3), [3, 3, 3, 1]); // exactly full
    assert.deepEqual(await cut(100, 31 * 3 - 1), [2, 2, 2, 2, 2]);
    assert.deepEqual(await cut(2, 31 * 3), [2, 2, 2, 2, 2]); // the count binds first
    const big = (i: number) => (i === 2 ? 500 : 31);
    assert.deepEqual(
      await collect(convert.batched(items.slice(0, 5), 100, 100, big)),
      [[0, 1], [2], [3, 4]],
    );
  });

  it("reads the source lazily", async () => {
    let pulled = 0;
    function* source() {
      for (let i = 0; i < 100; i++) {
        pulled += 1;
        yield i;
      }
    }
    const batches = convert.batched(source(), 10, 1 << 20, unit);
    assert.equal(pulled, 0);
    await batches.next();
    assert.equal(pulled, 10); // a full batch is cut without reading ahead
    await batches.return(undefined);
  });

  it("refuses limits below 1", () => {
    assert.throws(() => convert.checkBatchLimits(0, 10), /batchSize must be an integer >= 1/);
    assert.throws(() => convert.checkBatchLimits(10, 0.5), /batchBytes must be an integer >= 1/);
    convert.checkBatchLimits(1, 1);
  });

  it("computes the encoded size of documents exactly", () => {
    const docs = [
      create(DocumentSchema, {}),
      create(DocumentSchema, { id: "a" }),
      create(DocumentSchema, { id: "d00", vector: [1, 2, 3, 4] }),
      create(DocumentSchema, { id: "x".repeat(300), vector: new Array(32).fill(0.5), text: "héllo wörld ✓ 😀", tenant: "acme" }),
      create(DocumentSchema, { id: "b", vector: new Array(5000).fill(1), text: "t".repeat(20_000) }),
      create(DocumentSchema, { id: "m", metadata: {} }),
      create(DocumentSchema, {
        id: "m2",
        metadata: {
          "": "",
          n: 0,
          f: -1.5,
          big: 2 ** 60,
          yes: true,
          no: false,
          nothing: null,
          s: "ünïcödé",
          list: [1, "two", null, false, [], {}, [3, [4]], { k: "v" }],
          nested: { a: { b: { c: [] } }, empty: {} },
          long: "y".repeat(200),
        },
      }),
    ];
    for (const doc of docs) {
      assert.equal(convert.encodedSize(doc), toBinary(DocumentSchema, doc).length, JSON.stringify(doc.id));
      assert.equal(convert.documentSize(doc), convert.encodedSize(doc) + 8);
    }
  });
});

describe("BadRequest decoding", () => {
  it("decodes several violations and skips unknown fields", () => {
    const writer = new BinaryWriter();
    for (const [field, description] of [["a", "first"], ["b.c[0]", "second ✓"]] as const) {
      writer.tag(1, WireType.LengthDelimited).fork();
      writer.tag(1, WireType.LengthDelimited).string(field);
      writer.tag(2, WireType.LengthDelimited).string(description);
      writer.tag(9, WireType.Varint).uint32(7); // unknown field
      writer.join();
    }
    writer.tag(5, WireType.LengthDelimited).string("ignored");
    assert.deepEqual(decodeBadRequest(writer.finish()), [
      { field: "a", description: "first" },
      { field: "b.c[0]", description: "second ✓" },
    ]);
    assert.deepEqual(decodeBadRequest(new Uint8Array()), []);
  });
});

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of source) out.push(item);
  return out;
}
