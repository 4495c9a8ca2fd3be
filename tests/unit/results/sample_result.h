/* A worker result exercising every field, shared by the results tests. Frames 0..3 used. */
#ifndef AGORA_TEST_SAMPLE_RESULT_H
#define AGORA_TEST_SAMPLE_RESULT_H

#define SAMPLE_MASK_SHA "MASKSHA"

static const char sample_worker_result[] =
    "{\"schema\":\"agora.result/1\",\"plugin\":{\"id\":\"org.example.nodule\",\"version\":"
    "\"1.2.0\"},\"job_id\":7,\"status\":\"ok\","
    "\"findings\":[{\"code\":{\"scheme\":\"SCT\",\"code\":\"27925004\",\"meaning\":\"Nodule\"},"
    "\"confidence\":0.91,\"frame\":2,\"region\":1},"
    "{\"code\":{\"scheme\":\"99LOCAL\",\"code\":\"X-1\",\"meaning\":\"Opacité\"},\"confidence\":1,"
    "\"frame\":null,\"region\":null}],"
    "\"measurements\":[{\"name\":\"Nodule volume\",\"value\":1.5,\"unit\":\"mL\",\"frame\":2,"
    "\"region\":1,\"code\":{\"scheme\":\"LN\",\"code\":\"59408-5\",\"meaning\":\"Volume\"}},"
    "{\"name\":\"Diameter\",\"value\":12,\"unit\":\"mm\",\"frame\":null,\"region\":null}],"
    "\"regions\":[{\"id\":1,\"kind\":\"polygon\",\"frame\":2,\"points\":[[1,2],[3.5,4],[5,6]],"
    "\"label\":\"nodule\"},{\"id\":2,\"kind\":\"box\",\"frame\":0,\"points\":[[0,0],[10,10]]},"
    "{\"id\":3,\"kind\":\"point\",\"frame\":1,\"points\":[[4,4]]},"
    "{\"id\":4,\"kind\":\"mask\",\"frame\":3,\"points\":[],\"mask\":{\"first_frame\":2,\"frames\":"
    "2,"
    "\"rows\":4,\"columns\":4,\"bits\":8,\"sha256\":\"" SAMPLE_MASK_SHA "\"}}],"
    "\"summary\":\"One "
    "nodule.\",\"metrics\":{\"wall_ms\":120,\"cpu_us\":100000,\"peak_rss_kb\":2048}}";

#endif
