#!/usr/bin/env python3
"""Patches a copy of ggml-cuda.cu for a diagnostic build of the CUDA backend (never the
product's): KWYRE_CUDA_TRACE=1 logs which compute calls capture or update the CUDA graph
and why, KWYRE_CUDA_TRACE_DIR=D dumps every captured graph to D/graph-CALL.txt (kernels,
launch shapes, arguments) for diffing, and KWYRE_GRAPH_REINSTANTIATE=1 or
KWYRE_GRAPH_UPLOAD=1 re-instantiate or upload the executable graph after an update.
   trace-patch.py GGML_CUDA_CU"""
import sys

p = sys.argv[1]
s = open(p).read()

def sub(old, new):
    global s
    if old not in s:
        sys.exit("trace-patch: anchor not found: " + old[:60])
    s = s.replace(old, new, 1)

sub('static bool is_cuda_graph_update_required(ggml_backend_cuda_context * cuda_ctx, ggml_cgraph * cgraph) {',
    'static int kw_mismatch = -1;\nstatic bool kw_trace = getenv("KWYRE_CUDA_TRACE") != nullptr;\nstatic long kw_calls = 0;\n'
    'static bool is_cuda_graph_update_required(ggml_backend_cuda_context * cuda_ctx, ggml_cgraph * cgraph) {\n    kw_mismatch = -1;')
sub('''        if (!has_matching_properties) {
            cuda_graph_update_required = true;
        }''', '''        if (!has_matching_properties) {
            cuda_graph_update_required = true;
            kw_mismatch = i;
            if (kw_trace) {
                ggml_tensor * n = cgraph->nodes[i];
                ggml_graph_node_properties * q = &cuda_ctx->cuda_graph->ggml_graph_properties[i];
                fprintf(stderr, "kwtrace: mismatch node %d %s op %s data %p was %p src0 %p was %p ne1 %ld was %ld\\n", i, n->name, ggml_op_name(n->op),
                    n->data, q->node_address, n->src[0] ? n->src[0]->data : nullptr, q->src_address[0], (long) n->ne[1], (long) q->ne[1]);
            }
        }''')
sub('''    if (stat == cudaErrorGraphExecUpdateFailure) {''', '''    if (kw_trace) {
        fprintf(stderr, "kwtrace: exec update stat %d\\n", (int) stat);
    }
    if (stat == cudaErrorGraphExecUpdateFailure) {''')
sub('''    if (use_cuda_graph && cuda_graph_update_required) {
        // Start CUDA graph capture''', '''    kw_calls++;
    if (kw_trace && (cuda_graph_update_required || !use_cuda_graph)) {
        fprintf(stderr, "kwtrace: call %ld nodes %d use %d update %d consecutive %d batch %d\\n", kw_calls, cgraph->n_nodes,
            (int) use_cuda_graph, (int) cuda_graph_update_required, cuda_ctx->cuda_graph->number_consecutive_updates, batch_size);
    }
    if (use_cuda_graph && cuda_graph_update_required) {
        // Start CUDA graph capture''')
sub('''            // add to the pool
            pool_size += reserve_size;''', '''            // add to the pool
            pool_size += reserve_size;
            if (getenv("KWYRE_CUDA_TRACE")) {
                fprintf(stderr, "kwtrace: vmm pool grows by %zu to %zu\\n", reserve_size, pool_size);
            }''')
sub('''    enum ggml_status result = GGML_STATUS_SUCCESS;

    try {''', '''    enum ggml_status result = GGML_STATUS_SUCCESS;
    if (kw_trace) {
        fprintf(stderr, "kwtrace: graph_reserve nodes %d alloc %d\\n", cgraph->n_nodes, (int) alloc);
    }

    try {''')
# Dump each captured CUDA graph (kernels, launch shapes, 8-byte arguments) to
# KWYRE_CUDA_TRACE_DIR/graph-CALL.txt so captures can be diffed.
sub('static int kw_mismatch = -1;', r'''static void kw_dump_graph(cudaGraph_t g, long call) {
    const char * dir = getenv("KWYRE_CUDA_TRACE_DIR");
    if (dir == nullptr) {
        return;
    }
    size_t n = 0;
    if (cudaGraphGetNodes(g, nullptr, &n) != cudaSuccess) {
        return;
    }
    std::vector<cudaGraphNode_t> nodes(n);
    cudaGraphGetNodes(g, nodes.data(), &n);
    char path[512];
    snprintf(path, sizeof path, "%s/graph-%06ld.txt", dir, call);
    FILE * f = fopen(path, "w");
    if (f == nullptr) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        cudaGraphNodeType t;
        cudaGraphNodeGetType(nodes[i], &t);
        if (t != cudaGraphNodeTypeKernel) {
            fprintf(f, "%zu type %d\n", i, (int) t);
            continue;
        }
        cudaKernelNodeParams kp = {};
        if (cudaGraphKernelNodeGetParams(nodes[i], &kp) != cudaSuccess) {
            fprintf(f, "%zu kernel ?\n", i);
            continue;
        }
        const char * name = nullptr;
        cudaFuncGetName(&name, kp.func);
        fprintf(f, "%zu %s grid %u,%u,%u block %u,%u,%u smem %u args", i, name ? name : "?", kp.gridDim.x, kp.gridDim.y, kp.gridDim.z,
            kp.blockDim.x, kp.blockDim.y, kp.blockDim.z, kp.sharedMemBytes);
        cudaFunction_t cf = nullptr;
        if (cudaGetFuncBySymbol(&cf, kp.func) == cudaSuccess && kp.kernelParams != nullptr) {
            for (size_t a = 0; a < 32; a++) {
                size_t off = 0, sz = 0;
                if (cuFuncGetParamInfo((CUfunction) cf, a, &off, &sz) != CUDA_SUCCESS) {
                    break;
                }
                if (sz == 8) {
                    fprintf(f, " %llx", (unsigned long long) *(uint64_t *) kp.kernelParams[a]);
                } else if (sz == 4) {
                    fprintf(f, " %x", *(uint32_t *) kp.kernelParams[a]);
                } else {
                    fprintf(f, " [%zu]", sz);
                }
            }
        }
        fprintf(f, "\n");
    }
    fclose(f);
}
static int kw_mismatch = -1;''')
sub('''            CUDA_CHECK(cudaStreamEndCapture(cuda_ctx->stream(), &cuda_ctx->cuda_graph->graph));''', '''            CUDA_CHECK(cudaStreamEndCapture(cuda_ctx->stream(), &cuda_ctx->cuda_graph->graph));
            kw_dump_graph(cuda_ctx->cuda_graph->graph, kw_calls);''')
# Variants for the diagnosis: re-instantiate instead of updating, or upload after.
sub('''    if (kw_trace) {
        fprintf(stderr, "kwtrace: exec update stat %d\\n", (int) stat);
    }''', '''    if (kw_trace) {
        fprintf(stderr, "kwtrace: exec update stat %d\\n", (int) stat);
    }
    if (stat == cudaSuccess && getenv("KWYRE_GRAPH_REINSTANTIATE")) {
        stat = cudaErrorGraphExecUpdateFailure;
    }
    if (stat == cudaSuccess && getenv("KWYRE_GRAPH_UPLOAD")) {
        CUDA_CHECK(cudaGraphUpload(cuda_ctx->cuda_graph->instance, cuda_ctx->stream()));
    }''')
open(p, "w").write(s)
