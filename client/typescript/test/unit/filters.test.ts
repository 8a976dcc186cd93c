// Unit tests of the filter object -> fathom.v1.Filter translation (no server).
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { create, toJson } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { FilterError, type FilterSpec, rfc3339, toFilter } from "../../src/filters.js";
import { FilterSchema } from "../../src/gen/fathom/v1/filter_pb.js";

/** The translated filter in proto JSON form (camelCase field names, as protobuf-es writes them). */
function json(spec: FilterSpec): unknown {
  return toJson(FilterSchema, toFilter(spec));
}

function field(key: string, condition: Record<string, unknown>): unknown {
  return { field: { key, ...condition } };
}

describe("filters", () => {
  it("treats a bare value as $eq", () => {
    assert.deepEqual(json({ lang: "en" }), field("lang", { eq: { stringValue: "en" } }));
    assert.deepEqual(json({ n: 3 }), field("n", { eq: { numberValue: 3 } }));
    assert.deepEqual(json({ ok: false }), field("ok", { eq: { boolValue: false } }));
  });

  it("maps every field operator", () => {
    assert.deepEqual(json({ a: { $ne: "x" } }), field("a", { ne: { stringValue: "x" } }));
    assert.deepEqual(json({ a: { $contains: "x" } }), field("a", { contains: { stringValue: "x" } }));
    assert.deepEqual(
      json({ a: { $in: ["x", 1, true] } }),
      field("a", { in: { values: [{ stringValue: "x" }, { numberValue: 1 }, { boolValue: true }] } }),
    );
    assert.deepEqual(json({ a: { $nin: ["x"] } }), field("a", { notIn: { values: [{ stringValue: "x" }] } }));
    assert.deepEqual(json({ a: { $gt: 1 } }), field("a", { gt: { number: 1 } }));
    assert.deepEqual(json({ a: { $gte: 1.5 } }), field("a", { gte: { number: 1.5 } }));
    assert.deepEqual(json({ a: { $lt: -2 } }), field("a", { lt: { number: -2 } }));
    assert.deepEqual(json({ a: { $lte: 0 } }), field("a", { lte: { number: 0 } }));
    assert.deepEqual(json({ a: { $exists: true } }), field("a", { exists: {} }));
    assert.deepEqual(json({ a: { $exists: false } }), { not: field("a", { exists: {} }) });
  });

  it("ANDs several keys and several operators, in order", () => {
    assert.deepEqual(json({ year: { $gte: 2020, $lt: 2024 }, lang: "en" }), {
      all: {
        filters: [
          { all: { filters: [field("year", { gte: { number: 2020 } }), field("year", { lt: { number: 2024 } })] } },
          field("lang", { eq: { stringValue: "en" } }),
        ],
      },
    });
  });

  it("maps $or, $and and $not", () => {
    assert.deepEqual(json({ $or: [{ lang: "en" }, { lang: "de" }] }), {
      any: { filters: [field("lang", { eq: { stringValue: "en" } }), field("lang", { eq: { stringValue: "de" } })] },
    });
    assert.deepEqual(json({ $and: [{ a: 1 }, { b: { $ne: 2 } }] }), {
      all: { filters: [field("a", { eq: { numberValue: 1 } }), field("b", { ne: { numberValue: 2 } })] },
    });
    assert.deepEqual(json({ $not: { tags: { $contains: "draft" } } }), {
      not: field("tags", { contains: { stringValue: "draft" } }),
    });
  });

  it("maps {} to an empty all and skips undefined keys", () => {
    const empty = toFilter({});
    assert.equal(empty.node.case, "all");
    assert.equal(empty.node.case === "all" && empty.node.value.filters.length, 0);
    assert.deepEqual(json({ a: 1, b: undefined }), field("a", { eq: { numberValue: 1 } }));
    assert.equal(toFilter({ $or: [] }).node.case, "any");
  });

  it("maps $id", () => {
    assert.deepEqual(json({ $id: { $in: ["a", "b"] } }), { ids: { ids: ["a", "b"] } });
    assert.deepEqual(json({ $id: "a" }), { ids: { ids: ["a"] } });
    assert.deepEqual(json({ $id: { $eq: "a" } }), { ids: { ids: ["a"] } });
    assert.deepEqual(json({ $id: { $nin: ["a"] } }), { not: { ids: { ids: ["a"] } } });
    assert.deepEqual(json({ $id: { $ne: "a" } }), { not: { ids: { ids: ["a"] } } });
  });

  it("turns Dates into timestamp bounds and RFC 3339 strings", () => {
    const when = new Date("2024-05-01T12:00:00Z");
    const filter = toFilter({ published: { $gte: when } });
    assert.equal(filter.node.case, "field");
    const condition = filter.node.case === "field" ? filter.node.value.condition : undefined;
    assert.equal(condition?.case, "gte");
    const bound = condition?.case === "gte" ? condition.value.value : undefined;
    assert.equal(bound?.case, "timestamp");
    assert.equal(bound?.case === "timestamp" && timestampDate(bound.value).getTime(), when.getTime());
    assert.deepEqual(json({ t: when }), field("t", { eq: { stringValue: "2024-05-01T12:00:00Z" } }));
    assert.equal(rfc3339(new Date("2024-05-01T12:00:00.250Z")), "2024-05-01T12:00:00.250Z");
  });

  it("passes a Filter message through", () => {
    const message = create(FilterSchema, { node: { case: "ids", value: { ids: ["a"] } } });
    assert.equal(toFilter(message), message);
  });

  const invalid: [unknown, string, string][] = [
    [{ a: { $gtee: 1 } }, ".a.$gtee", "unknown operator"],
    [{ $xor: [] }, ".$xor", "unknown logical operator"],
    [{ a: [1, 2] }, ".a", "$in"],
    [{ a: { b: 1 } }, ".a", "dotted key"],
    [{ a: { $gt: "2024" } }, ".a.$gt", "number or a Date"],
    [{ a: { $gt: true } }, ".a.$gt", "number or a Date"],
    [{ a: { $in: "abc" } }, ".a.$in", "expected an array"],
    [{ a: { $in: [null] } }, ".a.$in[0]", "string, number or boolean"],
    [{ a: null }, ".a", "string, number or boolean"],
    [{ a: { $exists: 1 } }, ".a.$exists", "true or false"],
    [{ $or: { a: 1 } }, ".$or", "array of filters"],
    [{ $or: [{ a: 1 }, "b"] }, ".$or[1]", "expected an object"],
    [{ $not: [{ a: 1 }] }, ".$not", "expected an object"],
    [{ $id: 5 }, ".$id", "strings"],
    [{ $id: { $gt: "a" } }, ".$id.$gt", "only $eq"],
    [{ $id: { $in: ["a", 2] } }, ".$id.$in[1]", "strings"],
    [{ "": 1 }, "", "non-empty"],
    [{ t: { $gt: new Date("nope") } }, ".t.$gt", "invalid Date"],
  ];
  for (const [spec, path, fragment] of invalid) {
    it(`rejects ${JSON.stringify(spec)} at "${path}"`, () => {
      assert.throws(
        () => toFilter(spec as FilterSpec),
        (error: unknown) =>
          error instanceof FilterError && error.path === path && error.message.includes(fragment),
      );
    });
  }
});
